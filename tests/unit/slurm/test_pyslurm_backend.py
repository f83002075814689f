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
from slurmopt.slurm.backend import CliBackend, get_backend
from slurmopt.slurm.pyslurm_backend import (
    PyslurmBackend,
    gres_text,
    import_pyslurm,
    job_from_pyslurm,
    node_from_pyslurm,
    partition_from_pyslurm,
    pyslurm_series,
)

from .fakes import FakeRunner, ok

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


@pytest.fixture
def be() -> PyslurmBackend:
    StubJob.calls, StubJob.fail_with = [], []
    runner = FakeRunner({("sinfo", "--version"): ok(("sinfo", "--version"), "slurm 25.11.1")})
    return PyslurmBackend(stub_module(), runner, sleep=lambda s: None)


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
