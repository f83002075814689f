"""The pyslurm backend.

pyslurm 25.11 does not import on any Debian Slurm, so two kinds of tests:
* mapping and action rules against a stub module that follows pyslurm's
  documented API (always run);
* the real module (skipped where ``import pyslurm`` fails, i.e. here).
"""

from __future__ import annotations

from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from slurmopt.errors import ConfigError, JobNotPending, SlurmUnavailable
from slurmopt.model import JobRequest, JobState, NodeState
from slurmopt.slurm import backend as backend_mod
from slurmopt.slurm.accounting import QOS_ARGV
from slurmopt.slurm.backend import CliBackend, get_backend
from slurmopt.slurm.pyslurm_backend import (
    JOB_TRES_ARGV,
    PyslurmBackend,
    gpu_changes,
    gres_text,
    import_pyslurm,
    job_from_pyslurm,
    node_from_pyslurm,
    parse_job_tres_text,
    partition_from_pyslurm,
    pyslurm_series,
    tres_text,
)

from .fakes import RESERVATIONS, FakeRunner, ok

NODE = SimpleNamespace(
    name="gpu-a1",
    state="MIXED+DRAIN",
    configured_gres={"gpu:a100": 4},
    allocated_gres={"gpu:a100": {"count": 2, "indexes": "0-1"}},
    total_cpus=64,
    allocated_cpus=8,
    real_memory=512000,
    allocated_memory=16000,
    available_features=["a100", "ib"],
    active_features=["a100", "ib"],
    partitions=["a100", "gpu"],
    reason="maintenance",
    weight=1,
    extra=None,
    comment=None,
)
PART = SimpleNamespace(
    name="a100",
    nodes="gpu-a[1-2]",
    state="UP",
    is_default=False,
    max_time=4320,
    default_time=240,
    max_nodes="UNLIMITED",
    min_nodes=0,
    priority_tier=1,
    priority_job_factor=1,
    allowed_accounts=["ALL"],
    denied_accounts=[],
    allowed_groups=["ALL"],
    allowed_qos=["normal", "high"],
    denied_qos=[],
    default_memory_per_cpu=2048,
    default_memory_per_node="UNLIMITED",
    max_memory_per_node="UNLIMITED",
    max_cpus_per_node="UNLIMITED",
    oversubscribe="NO",
    total_cpus=128,
    total_nodes=2,
)


def job_ns(**kw: Any) -> SimpleNamespace:
    base: dict[str, Any] = {
        "id": 7,
        "name": "train",
        "user_name": "alice",
        "state": "PENDING",
        "state_reason": "Priority",
        "partition": "a100,h100",
        "priority": 100,
        "nice": 0,
        "gres_per_node": {"gpu:a100": 2},
        "allocated_nodes": None,
        "array_id": None,
        "array_task_id": None,
        "array_tasks_waiting": None,
        "num_nodes": 1,
        "max_nodes": None,
        "ntasks": 1,
        "cpus_per_task": 4,
        "cpus": 4,
        "memory": 8000,
        "memory_per_node": 8000,
        "memory_per_cpu": None,
        "memory_per_gpu": None,
        "constraints": [],
        "time_limit": 60,
        "time_limit_min": None,
        "account": "ml",
        "qos": "normal",
        "group_name": "ml",
        "submit_time": 100,
        "eligible_time": 100,
        "start_time": 0,
        "end_time": 0,
        "comment": None,
        "admin_comment": None,
        "working_directory": "/home/alice",
    }
    base.update(kw)
    return SimpleNamespace(**base)


class StubJob:
    calls: list[tuple[Any, ...]] = []
    fail_with: list[Exception] = []

    def __init__(self, job_id: int) -> None:
        self.id = job_id

    def _do(self, *call: Any) -> None:
        StubJob.calls.append((self.id, *call))
        if StubJob.fail_with:
            raise StubJob.fail_with.pop(0)

    def modify(self, desc: Any) -> None:
        self._do("modify", dict(desc.changes))

    def hold(self) -> None:
        self._do("hold")

    def release(self) -> None:
        self._do("release")


class StubDesc:
    def __init__(self, **changes: Any) -> None:
        self.changes = changes


def stub_module() -> ModuleType:
    mod = ModuleType("pyslurm")
    mod.__version__ = "25.11.0"  # type: ignore[attr-defined]
    mod.Job = StubJob  # type: ignore[attr-defined]
    mod.JobSubmitDescription = StubDesc  # type: ignore[attr-defined]
    mod.Nodes = SimpleNamespace(load=lambda: {"gpu-a1": NODE})  # type: ignore[attr-defined]
    mod.Partitions = SimpleNamespace(load=lambda: {"a100": PART})  # type: ignore[attr-defined]
    mod.Jobs = SimpleNamespace(load=lambda: {7: job_ns()})  # type: ignore[attr-defined]
    return mod


def stub_runner(job_tres: str = "7|N/A|N/A\n") -> FakeRunner:
    return FakeRunner(
        {
            ("sinfo", "--version"): ok(("sinfo", "--version"), "slurm 25.11.1"),
            JOB_TRES_ARGV: ok(JOB_TRES_ARGV, job_tres),
            RESERVATIONS: ok(RESERVATIONS, "No reservations in the system\n"),
        }
    )


@pytest.fixture
def be() -> PyslurmBackend:
    StubJob.calls, StubJob.fail_with = [], []
    return PyslurmBackend(stub_module(), stub_runner(), sleep=lambda s: None)


def test_gres_text() -> None:
    assert gres_text({"gpu:a100": 4, "gpu": 2}) == "gpu:a100:4,gpu:2"
    assert gres_text({"gpu:h100": {"count": 2, "indexes": "0,2"}}) == "gpu:h100:2(IDX:0,2)"
    assert gres_text(None) == ""


def test_node_mapping() -> None:
    n = node_from_pyslurm(NODE)
    assert (n.state, n.flags) == (NodeState.MIXED, frozenset({"DRAIN"}))
    assert n.gpus == {"a100": 4} and n.gpus_used == {"a100": 2} and not n.available
    assert (n.cpus, n.cpus_alloc, n.memory_mb, n.partitions) == (64, 8, 512000, ("a100", "gpu"))


def test_partition_mapping() -> None:
    p = partition_from_pyslurm(PART)
    assert p.nodes == ("gpu-a1", "gpu-a2") and p.max_time_s == 4320 * 60
    assert p.default_time_s == 240 * 60 and p.max_nodes is None
    assert p.allow_accounts is None and p.allow_qos == ("normal", "high")
    assert p.def_mem_per_cpu_mb == 2048 and p.max_mem_per_node_mb is None
    assert p.deny_accounts == () and p.deny_qos == ()


def test_unset_deny_lists_read_as_all_deny_nobody() -> None:
    # pyslurm 25.11.2 on Slurm 25.11.7 (scripts/test-matrix slurm25): no DenyQos /
    # DenyAccounts set, yet denied_qos == denied_accounts == ["ALL"]
    live = SimpleNamespace(**{**vars(PART), "denied_qos": ["ALL"], "denied_accounts": ["ALL"]})
    p = partition_from_pyslurm(live)
    assert p.deny_accounts == () and p.deny_qos == ()
    named = SimpleNamespace(**{**vars(PART), "denied_qos": ["low"], "denied_accounts": ["guest"]})
    q = partition_from_pyslurm(named)
    assert q.deny_qos == ("low",) and q.deny_accounts == ("guest",)


def test_job_mapping() -> None:
    j = job_from_pyslurm(job_ns())
    assert j.state == JobState.PENDING and j.partitions == ("a100", "h100")
    assert (j.request.gpus_per_node, j.request.gpu_type, j.request.gres) == (
        2,
        "a100",
        "gres/gpu:a100:2",
    )
    assert j.request.time_limit_s == 3600 and j.start_time is None and not j.held
    held = job_from_pyslurm(job_ns(priority=0, state_reason="JobHeldUser"))
    assert held.held
    run = job_from_pyslurm(job_ns(state="RUNNING", allocated_nodes="gpu-a[1-2]", partition="a100"))
    assert run.nodes == ("gpu-a1", "gpu-a2") and run.gpus_alloc == {"a100": 4}


def test_snapshot_through_stub(be: PyslurmBackend) -> None:
    s = be.snapshot()
    assert s.source == "pyslurm" and s.slurm_version == "25.11.1"
    assert s.partition("a100").nodes == ("gpu-a1",)  # gpu-a2 is not a loaded node
    assert [j.job_id for j in s.jobs] == [7]


def test_move_rewrites_gres_in_one_modify(be: PyslurmBackend) -> None:
    req = JobRequest(gpus_per_node=2, gpu_type="a100", gres="gres/gpu:a100:2")
    res = be.move(7, "h100", gpu_type="h100", current_request=req)
    assert res.action == "move" and res.attempts == 1
    assert StubJob.calls == [
        (7, "modify", {"partitions": ["h100"], "gres_per_node": {"gpu:h100": 2}})
    ]


def test_eagain_retried_and_not_pending_typed(be: PyslurmBackend) -> None:
    StubJob.fail_with = [RuntimeError("Resource temporarily unavailable")] * 3
    assert be.set_nice(7, 10).attempts == 4
    StubJob.fail_with = [RuntimeError("Job is no longer pending execution")]
    with pytest.raises(JobNotPending):
        be.move(7, "a100")
    StubJob.fail_with = [RuntimeError("Unable to contact slurm controller (connect failure)")]
    with pytest.raises(SlurmUnavailable):
        be.hold(7)


def test_release_reapplies_priority(be: PyslurmBackend) -> None:
    be.release(7, priority=500)
    assert StubJob.calls == [(7, "release"), (7, "modify", {"priority": 500})]


def test_series() -> None:
    assert pyslurm_series(stub_module()) == "25.11"


def test_get_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner({("sinfo", "--version"): ok(("sinfo", "--version"), "slurm 22.05.8")})
    assert isinstance(get_backend({"SLURMOPT_BACKEND": "cli"}, runner=runner), CliBackend)
    with pytest.raises(ConfigError, match="expected"):
        get_backend({"SLURMOPT_BACKEND": "rest"})
    if import_pyslurm() is None:
        with pytest.raises(ConfigError, match="import pyslurm"):
            get_backend({"SLURMOPT_BACKEND": "pyslurm"})
        auto = get_backend({}, runner=runner)
        assert type(auto) is CliBackend
    # With auto, a pyslurm whose series differs from the running Slurm is not chosen.
    mod = stub_module()
    monkeypatch.setattr("slurmopt.slurm.pyslurm_backend.import_pyslurm", lambda: mod)
    assert type(get_backend({"SLURMOPT_BACKEND": "auto"}, runner=runner)) is CliBackend
    runner25 = FakeRunner({("sinfo", "--version"): ok(("sinfo", "--version"), "slurm 25.11.2")})
    assert isinstance(get_backend({"SLURMOPT_BACKEND": "auto"}, runner=runner25), PyslurmBackend)
    # pyslurm is opt-in: unset means the CLI even where a matching pyslurm imports.
    assert type(get_backend({}, runner=runner25)) is CliBackend
    assert backend_mod.BACKEND_ENV == "SLURMOPT_BACKEND"


def test_real_pyslurm_snapshot() -> None:
    pyslurm = pytest.importorskip("pyslurm", reason="pyslurm 25.11 needs Slurm 25.11 libraries")
    be = PyslurmBackend(pyslurm)
    snap = be.snapshot()
    assert snap.nodes and snap.partitions and snap.source == "pyslurm"


def test_job_gres_keys_with_the_gres_prefix() -> None:
    # pyslurm 25.11.2 on Slurm 25.11.7: gres_per_node == {"gres/gpu:a100": 2}
    assert gres_text({"gres/gpu:a100": 2}) == "gpu:a100:2"
    assert gres_text("gres/gpu:a100:2,gres:gpu:1") == "gpu:a100:2,gpu:1"
    j = job_from_pyslurm(job_ns(gres_per_node={"gres/gpu:a100": 2}))
    assert (j.request.gpus_per_node, j.request.gpu_type) == (2, "a100")
    assert j.request.gres == "gres/gpu:a100:2"


# -- what pyslurm 25.11.2 cannot read, and where it comes from (Slurm 25.11.7, live) ------


def layout(**per_node: str) -> dict[str, dict[str, Any]]:
    """``Job.get_resource_layout_per_node()`` as pyslurm 25.11.2 builds it: each node's
    ``gres_detail`` string through its ``cstr.to_gres_dict`` (``gpu:h100:2(IDX:0,2)`` ->
    ``{"gpu:h100": {"count": 2, "indexes": "0,2"}}``)."""
    out: dict[str, dict[str, Any]] = {}
    for node, detail in per_node.items():
        name, gtype, rest = detail.split(":", 2)
        count, _, idx = rest.partition("(IDX:")
        out[node] = {
            "cpu_ids": "0",
            "gres": {f"{name}:{gtype}": {"count": int(count), "indexes": idx.rstrip(")")}},
            "memory": 1000,
        }
    return out


def test_job_tres_lines() -> None:
    text = "7|gres/gpu:h100:1|N/A\n8|N/A|cpu=2,gres/gpu:1\nsite banner\n9|N/A|N/A\n"
    assert parse_job_tres_text(text) == {
        7: ("gres/gpu:h100:1", None),
        8: (None, "cpu=2,gres/gpu:1"),
        9: (None, None),
    }
    # the squeue fields, unpadded and |-separated
    assert JOB_TRES_ARGV[0] == "squeue" and "tres-per-job:0|" in JOB_TRES_ARGV[-1]


def test_per_job_and_per_task_gpu_requests_from_squeue_text() -> None:
    # pyslurm 25.11.2: Job.tres_per_job parses only key=value items, so "gres/gpu:h100:1"
    # reads as None; the backend takes the squeue text
    per_job = job_from_pyslurm(
        job_ns(gres_per_node={}, tres_per_job=None), ("gres/gpu:h100:1", None)
    )
    r = per_job.request
    assert (r.gpus_per_job, r.gpu_type, r.tres_per_job, r.gpus_per_node) == (
        1,
        "h100",
        "gres/gpu:h100:1",
        0,
    )
    assert r.wants_gpus
    per_task = job_from_pyslurm(job_ns(gres_per_node={}, ntasks=2), (None, "cpu=2,gres/gpu:1"))
    assert per_task.request.tres_per_task == "gres/gpu:1"
    assert (per_task.request.gpus_per_task, per_task.request.gpu_type) == (1, None)
    assert per_task.request.gpus_total() == 2
    # without the text: what pyslurm gives (here nothing: no per-job request seen)
    assert job_from_pyslurm(job_ns(gres_per_node={})).request.tres_per_job is None


def test_tres_text_of_pyslurm_objects() -> None:
    gpu = SimpleNamespace(count=1, type="h100", name="gpu:h100")
    tres = SimpleNamespace(gres={"gpu:h100": gpu}, cpu=None)
    assert tres_text(tres) == "gres/gpu:h100:1"
    assert tres_text(SimpleNamespace(gres={})) is None  # only cpu=2: no GPU request
    assert tres_text({"gres/gpu": 2}) == "gres/gpu:2"
    assert tres_text("gres:gpu:1") == "gres/gpu:1"
    assert tres_text(None) is None
    j = job_from_pyslurm(job_ns(gres_per_node={}, tres_per_job=tres))
    assert (j.request.gpus_per_job, j.request.gpu_type) == (1, "h100")


def test_running_untyped_job_gets_its_gpus_from_the_layout() -> None:
    # --gres=gpu:1 moved to h100 and running on gpu-h1: the request has no type; the
    # allocation (gres_detail) has type and index
    j = job_from_pyslurm(
        job_ns(
            state="RUNNING",
            partition="h100",
            gres_per_node={"gres/gpu": 1},
            allocated_nodes="gpu-h1",
            get_resource_layout_per_node=lambda: layout(**{"gpu-h1": "gpu:h100:1(IDX:0)"}),
        )
    )
    assert j.request.gpu_type is None and j.request.gpus_per_node == 1
    assert j.gpus_alloc == {"h100": 1} and dict(j.gpu_indexes) == {"gpu-h1": (0,)}
    two = job_from_pyslurm(
        job_ns(
            state="RUNNING",
            gres_per_node={"gres/gpu:a100": 2},
            allocated_nodes="gpu-a[1-2]",
            get_resource_layout_per_node=lambda: layout(
                **{"gpu-a1": "gpu:a100:2(IDX:0,2)", "gpu-a2": "gpu:a100:2(IDX:1-2)"}
            ),
        )
    )
    assert two.gpus_alloc == {"a100": 4}
    assert dict(two.gpu_indexes) == {"gpu-a1": (0, 2), "gpu-a2": (1, 2)}


def test_no_layout_falls_back_to_the_typed_request() -> None:
    def broken() -> dict[str, Any]:
        raise ValueError("Unable to create hostlist.")

    j = job_from_pyslurm(
        job_ns(state="RUNNING", allocated_nodes="gpu-a1", get_resource_layout_per_node=broken)
    )
    assert j.gpus_alloc == {"a100": 2} and dict(j.gpu_indexes) == {}
    pending = job_from_pyslurm(job_ns(get_resource_layout_per_node=broken))
    assert pending.gpus_alloc == {}


def test_jobs_read_joins_the_squeue_text() -> None:
    runner = stub_runner("7|gres/gpu:2|N/A\n")
    mod = stub_module()
    mod.Jobs = SimpleNamespace(load=lambda: {7: job_ns(gres_per_node={})})  # type: ignore[attr-defined]
    be = PyslurmBackend(mod, runner, sleep=lambda s: None)
    (job,) = be.jobs()
    assert (job.request.gpus_per_job, job.request.tres_per_job) == (2, "gres/gpu:2")
    assert runner.calls.count(JOB_TRES_ARGV) == 1
    mod.Jobs = SimpleNamespace(load=dict)  # type: ignore[attr-defined]
    assert be.jobs() == () and runner.calls.count(JOB_TRES_ARGV) == 1  # no jobs: no squeue


def test_gpu_changes_per_node_job_and_task() -> None:
    node = JobRequest(gpus_per_node=2, gpu_type="a100", gres="gres/gpu:a100:2,gres/shard:4")
    assert gpu_changes(node, "h100") == {"gres_per_node": {"gpu:h100": 2, "shard": 4}}
    job = JobRequest(gpus_per_job=1, tres_per_job="gres/gpu:1")
    assert gpu_changes(job, "h100") == {"gpus": {"h100": 1}}
    assert gpu_changes(job, "") == {"gpus": 1}
    task = JobRequest(gpus_per_task=1, cpus_per_task=2, tres_per_task="gres/gpu:1")
    assert gpu_changes(task, "a100") == {"gpus_per_task": {"a100": 1}, "cpus_per_task": 2}


def test_move_per_job_request_in_one_modify(be: PyslurmBackend) -> None:
    req = JobRequest(gpus_per_job=1, tres_per_job="gres/gpu:1")
    be.move(7, ["a100", "h100"], gpu_type="h100", current_request=req)
    assert StubJob.calls == [(7, "modify", {"partitions": ["a100", "h100"], "gpus": {"h100": 1}})]


def test_nice_zero_goes_through_scontrol(be: PyslurmBackend) -> None:
    argv = ("scontrol", "update", "JobId=7", "Nice=0")
    assert isinstance(be.runner, FakeRunner)
    be.runner.table[argv] = ok(argv)
    res = be.set_nice(7, 0)
    assert res.argv == argv and StubJob.calls == []
    be.set_nice(7, 5)
    assert StubJob.calls == [(7, "modify", {"nice": 5})]


def test_snapshot_reads_reservations_and_qos(be: PyslurmBackend) -> None:
    assert isinstance(be.runner, FakeRunner)
    s = be.snapshot()
    assert s.reservations == () and s.qos == ()  # no partition QOS: sacctmgr not asked
    assert QOS_ARGV not in be.runner.calls
    mod = stub_module()
    mod.Partitions = SimpleNamespace(  # type: ignore[attr-defined]
        load=lambda: {"a100": SimpleNamespace(**{**vars(PART), "qos": "gpuq"})}
    )
    be.pyslurm = mod
    be.runner.table[RESERVATIONS] = ok(
        RESERVATIONS,
        "ReservationName=maint StartTime=2026-12-04T10:00:00 EndTime=2026-12-04T12:00:00 "
        "Duration=02:00:00 Nodes=gpu-a1 NodeCnt=1 Users=root Accounts=(null) State=INACTIVE\n",
    )
    be.runner.table[QOS_ARGV] = ok(QOS_ARGV, "gpuq|01:00:00|gres/gpu=2|\n")
    s = be.snapshot()
    assert s.partition("a100").qos == "gpuq"
    assert [r.name for r in s.reservations] == ["maint"]
    assert [(q.name, q.max_wall_s, q.max_gpus_per_user) for q in s.qos] == [("gpuq", 3600, 2)]


def test_ended_jobs_left_out_as_squeue_does() -> None:
    # Jobs.load() returns ended jobs slurmctld still holds (MinJobAge); squeue does not
    mod = stub_module()
    mod.Jobs = SimpleNamespace(  # type: ignore[attr-defined]
        load=lambda: {
            7: job_ns(),
            8: job_ns(id=8, state="CANCELLED"),
            9: job_ns(id=9, state="COMPLETED"),
            10: job_ns(id=10, state="COMPLETING", allocated_nodes="gpu-a1"),
            11: job_ns(id=11, state="REQUEUED"),
        }
    )
    be = PyslurmBackend(mod, stub_runner(), sleep=lambda s: None)
    assert [j.job_id for j in be.jobs()] == [7, 10, 11]


def test_untyped_node_allocation_is_the_nodes_one_type() -> None:
    # pyslurm 25.11.2: Node.allocated_gres comes from the node's allocated TRES,
    # {"gpu": 1} for a --gres=gpu:t4:1 job (AccountingStorageTRES=gres/gpu)
    t4 = SimpleNamespace(
        **{**vars(NODE), "configured_gres": {"gpu:t4": 8}, "allocated_gres": {"gpu": 1}}
    )
    assert node_from_pyslurm(t4).gpus_used == {"t4": 1}
    mixed = SimpleNamespace(
        **{
            **vars(NODE),
            "configured_gres": {"gpu:t4": 4, "gpu:a100": 4},
            "allocated_gres": {"gpu": 1},
        }
    )
    assert node_from_pyslurm(mixed).gpus_used == {"": 1}  # two types: which one is unknown


def test_snapshot_reads_associations_as_the_cli_does(be: PyslurmBackend) -> None:
    # the CLI backend's accounting reads (QOS limits, associations) are reused as they are
    from slurmopt.model import Association

    assoc = (Association(user="alice", account="ml", default_account="ml"),)
    be.accounting_hint = ((), assoc)
    assert be.snapshot().associations == assoc
