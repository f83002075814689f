"""The backend contract against the real local Slurm testbed (``scripts/testbed up``).

The CLI backend by default; with ``SLURMOPT_TEST_BACKEND=pyslurm`` the same tests
run the pyslurm backend (``scripts/test-matrix slurm25`` does both, on Slurm 25.11
with pyslurm built against it).

Jobs are submitted held or with ``--begin`` in the future when they must stay
pending, and are cancelled by the ``jobs`` fixture at teardown.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from slurmopt.clusterspec import ClusterSpec
from slurmopt.errors import JobNotPending, SlurmUnavailable, SlurmUnsupported
from slurmopt.model import Job, JobState, Snapshot
from slurmopt.slurm.backend import CliBackend
from slurmopt.slurm.pyslurm_backend import PyslurmBackend
from tests.slurm.conftest import JobTracker, reachable, wait_for

WAIT_S = 60.0


@pytest.fixture
def backend() -> CliBackend:
    """The backend under test: ``SLURMOPT_TEST_BACKEND`` = ``cli`` (default) or ``pyslurm``
    (a ConfigError, i.e. a test error, where pyslurm does not import)."""
    if os.environ.get("SLURMOPT_TEST_BACKEND", "cli") == "pyslurm":
        return PyslurmBackend.create(forced=True)
    return CliBackend(timeout=30)


def read(backend: CliBackend, job_id: int) -> Job:
    job = backend.job(job_id)
    assert job is not None, f"job {job_id} not in squeue"
    return job


def gpu_partition(spec: ClusterSpec, gpu_type: str) -> str:
    """The partition whose nodes all carry ``gpu_type`` GPUs (for example "a100")."""
    for p in spec.partitions:
        types = {spec.node(n).gpu_type for n in p.nodes}
        if types == {gpu_type} and all(spec.node(n).gpus for n in p.nodes):
            return p.name
    pytest.skip(f"the testbed has no partition of only {gpu_type} GPUs")
    raise AssertionError("unreachable")


def test_snapshot_matches_cluster_spec(backend: CliBackend, cluster_spec: ClusterSpec) -> None:
    snap = backend.snapshot()
    assert snap.source.startswith("cli-" if backend.name == "cli" else backend.name)
    assert snap.slurm_version
    assert snap.cluster_name == cluster_spec.name
    assert sorted(n.name for n in snap.nodes) == sorted(n.name for n in cluster_spec.nodes)
    for ns in cluster_spec.nodes:
        node = snap.node(ns.name)
        assert (node.cpus, node.memory_mb) == (ns.cpus, ns.memory_mb), ns.name
        assert dict(node.gpus) == ({ns.gpu_type: ns.gpus} if ns.gpus else {}), ns.name
        assert set(ns.features) <= set(node.features), ns.name
    assert sorted(p.name for p in snap.partitions) == sorted(
        p.name for p in cluster_spec.partitions
    )
    for ps in cluster_spec.partitions:
        part = snap.partition(ps.name)
        assert sorted(part.nodes) == sorted(ps.nodes), ps.name
        assert part.is_default == ps.default, ps.name
        assert part.max_time_s == ps.max_time_s, ps.name
        assert part.max_nodes == ps.max_nodes, ps.name
        if ps.default_time_s is not None:
            assert part.default_time_s == ps.default_time_s, ps.name
        assert part.priority_tier == ps.priority_tier, ps.name
        assert part.state == ps.state, ps.name
        for name in part.nodes:
            assert ps.name in snap.node(name).partitions
    # The saved form reads back identically.
    assert Snapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap


def test_submit_then_read_back(
    backend: CliBackend, jobs: JobTracker, cluster_spec: ClusterSpec
) -> None:
    part = gpu_partition(cluster_spec, "a100")
    job_id = jobs.track(
        backend.submit(
            [
                *("-H", "-J", "slurmopt-readback", "-p", part, "--gres=gpu:a100:2", "-c", "3"),
                *("--mem=1500", "-t", "00:20:00", "--comment=slurmopt test", "--wrap", "sleep 300"),
            ]
        )
    )
    job = read(backend, job_id)
    assert job.name == "slurmopt-readback" and job.state == JobState.PENDING
    assert job.held and job.reason == "JobHeldUser" and job.partitions == (part,)
    r = job.request
    assert (r.gpus_per_node, r.gpu_type, r.gres) == (2, "a100", "gres/gpu:a100:2")
    assert (r.cpus_per_task, r.mem_per_node_mb, r.time_limit_s) == (3, 1500, 1200)
    assert job.comment == "slurmopt test" and job.submit_time is not None
    assert job in backend.snapshot().jobs


def test_script_on_stdin(backend: CliBackend, jobs: JobTracker) -> None:
    script = "#!/bin/sh\n#SBATCH -J slurmopt-stdin\n#SBATCH -t 5\nsleep 300\n"
    job_id = jobs.track(backend.submit(["-H"], script=script))
    job = read(backend, job_id)
    assert job.name == "slurmopt-stdin" and job.request.time_limit_s == 300


def wait_running(backend: CliBackend, job_id: int) -> Job:
    def running() -> Job | None:
        job = read(backend, job_id)
        return job if job.running else None

    return wait_for(running, timeout=WAIT_S)


def test_move_typed_gpu_job_runs_in_the_other_partition(
    backend: CliBackend, jobs: JobTracker, cluster_spec: ClusterSpec
) -> None:
    src, h100 = gpu_partition(cluster_spec, "a100"), gpu_partition(cluster_spec, "h100")
    job_id = jobs.track(
        backend.submit(["-H", "-p", src, "--gres=gpu:a100:1", "-t", "5", "--wrap", "sleep 300"])
    )
    before = read(backend, job_id)
    if backend.version().legacy:
        # 22.05 would accept the rewrite and leave the job pending forever: refused.
        with pytest.raises(SlurmUnsupported):
            backend.move(job_id, h100, gpu_type="h100", current_request=before.request)
        assert read(backend, job_id) == before
        # A move that keeps the GPU type works: another partition with a100 nodes.
        dst = next(
            p.name
            for p in cluster_spec.partitions
            if p.name != src and any(cluster_spec.node(n).gpu_type == "a100" for n in p.nodes)
        )
        res = backend.move(job_id, dst, gpu_type="a100", current_request=before.request)
        assert res.argv[-1] == (f"Partition={dst}" if backend.name == "cli" else "move")
        expect_type = "a100"
    else:
        dst = h100
        res = backend.move(job_id, dst, gpu_type="h100", current_request=before.request)
        # the CLI backend's argv; pyslurm's names the call instead
        assert res.argv[-1] == ("Gres=gpu:h100:1" if backend.name == "cli" else "move")
        assert res.attempts >= 1
        expect_type = "h100"
    moved = read(backend, job_id)
    assert moved.partitions == (dst,) and moved.request.gpu_type == expect_type
    assert moved.request.gres == f"gres/gpu:{expect_type}:1"
    backend.release(job_id)
    job = wait_running(backend, job_id)
    assert job.partitions == (dst,)
    assert set(job.nodes) <= set(cluster_spec.partition(dst).nodes)
    assert job.gpus_alloc == {expect_type: 1} and len(job.gpu_indexes[job.nodes[0]]) == 1
    assert cluster_spec.node(job.nodes[0]).gpu_type == expect_type
    # Now it runs: moving it again is the distinct "no longer pending" outcome.
    with pytest.raises(JobNotPending):
        backend.move(job_id, src)


def test_move_untyped_gpu_job_across_gpu_types(
    backend: CliBackend, jobs: JobTracker, cluster_spec: ClusterSpec
) -> None:
    a100, h100 = gpu_partition(cluster_spec, "a100"), gpu_partition(cluster_spec, "h100")
    job_id = jobs.track(
        backend.submit(["-H", "-p", a100, "--gres=gpu:1", "-t", "5", "--wrap", "sleep 300"])
    )
    backend.move(job_id, h100)
    backend.release(job_id)
    job = wait_running(backend, job_id)
    assert job.partitions == (h100,) and job.gpus_alloc == {"h100": 1}


def test_move_to_several_partitions(
    backend: CliBackend, jobs: JobTracker, cluster_spec: ClusterSpec
) -> None:
    a100, h100 = gpu_partition(cluster_spec, "a100"), gpu_partition(cluster_spec, "h100")
    job_id = jobs.track(
        backend.submit(["-H", "-p", a100, "--gpus=1", "-t", "5", "--wrap", "sleep 60"])
    )
    if not backend.version().legacy:
        # 24.11+: typed per-job request rewritten to untyped in the same call.
        backend.move(job_id, a100, gpu_type="h100")
        assert read(backend, job_id).request.tres_per_job == "gres/gpu:h100:1"
    backend.move(job_id, [a100, h100], gpu_type="" if not backend.version().legacy else None)
    job = read(backend, job_id)
    # Slurm keeps its own order (24.11 stores ``a100,h100`` as ``h100,a100``).
    assert sorted(job.partitions) == sorted((a100, h100))
    assert (job.request.gpus_per_job, job.request.gpu_type) == (1, None)


def test_nice_and_priority_visible(backend: CliBackend, jobs: JobTracker) -> None:
    job_id = jobs.submit("--begin=now+3600", "-t", "5", "--wrap", "sleep 60")
    backend.set_nice(job_id, 50)
    assert read(backend, job_id).nice == 50
    backend.set_priority(job_id, 4242)
    job = read(backend, job_id)
    assert job.priority == 4242 and job.pending and not job.held


def test_hold_and_release_reapplies_priority(backend: CliBackend, jobs: JobTracker) -> None:
    job_id = jobs.submit("--begin=now+3600", "-t", "5", "--wrap", "sleep 60")
    backend.hold(job_id)
    held = read(backend, job_id)
    assert held.held and held.priority == 0 and (held.reason or "").startswith("JobHeld")
    backend.release(job_id, priority=777)
    job = read(backend, job_id)
    assert not job.held and job.priority == 777


def test_drain_and_resume_node(backend: CliBackend, cluster_spec: ClusterSpec) -> None:
    name = sorted(n.name for n in cluster_spec.nodes if not n.gpus)[-1]
    try:
        backend.drain_node(name, "slurmopt test drain")
        node = backend.snapshot().node(name)
        assert node.drained and not node.available and node.reason == "slurmopt test drain"
    finally:
        backend.resume_node(name)

    def resumed() -> bool:
        node = backend.snapshot().node(name)
        return not node.drained and node.available

    wait_for(resumed, timeout=WAIT_S)


def test_snapshot_command(slurm_env: dict[str, str]) -> None:
    from slurmopt.cli.main import cli

    res = CliRunner().invoke(cli, ["snapshot", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["format"] == 1 and data["nodes"] and data["partitions"]
    table = CliRunner().invoke(cli, ["snapshot"])
    assert table.exit_code == 0 and "PARTITION" in table.output


def test_ctld_stopped_is_a_typed_error_without_hang(ctld_stopped: Callable[[], object]) -> None:
    from slurmopt.cli.main import cli

    backend = CliBackend(timeout=20)
    backend.version()  # reads only the local configuration
    with ctld_stopped:
        start = time.monotonic()
        with pytest.raises(SlurmUnavailable):
            backend.snapshot()
        elapsed = time.monotonic() - start
        res = CliRunner().invoke(cli, ["snapshot"])
        restarted = reachable()  # another test session may run `testbed up` meanwhile
    # The first failed read ends the snapshot; each read is bounded by the timeout.
    assert elapsed < 20 + 5
    if not restarted:
        assert res.exit_code == SlurmUnavailable.exit_code, res.output
        assert res.output.startswith("slurmopt: error:") and res.output.count("\n") == 1
