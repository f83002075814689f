"""Builders of small clusters for the optimizer tests (and tests of the builders).

Other test modules import :func:`node`, :func:`part`, :func:`pending`,
:func:`running`, :func:`snapshot` and :func:`hetero_cluster` from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from slurmopt.model import Job, JobRequest, JobState, Node, NodeState, Partition, Snapshot

NOW = 1_700_000_000


def node(
    name: str,
    *,
    cpus: int = 64,
    mem: int = 512_000,
    gpus: dict[str, int] | None = None,
    state: NodeState = NodeState.IDLE,
    flags: Sequence[str] = (),
) -> Node:
    return Node(
        name=name,
        state=state,
        flags=frozenset(flags),
        cpus=cpus,
        memory_mb=mem,
        gpus=dict(gpus or {}),
    )


def part(name: str, nodes: Sequence[str], **kw: object) -> Partition:
    return Partition(name=name, nodes=tuple(nodes), **kw)  # type: ignore[arg-type]


def pending(
    job_id: int,
    partitions: Sequence[str],
    *,
    gpus: int = 1,
    gpu_type: str | None = None,
    cpus: int = 4,
    mem: int = 16_000,
    nodes: int = 1,
    limit: int | None = 3600,
    priority: int = 1000,
    submit: int | None = None,
    account: str | None = None,
    **kw: object,
) -> Job:
    req = JobRequest(
        nodes_min=nodes,
        ntasks=1,
        cpus_per_task=cpus,
        cpus_min=cpus * nodes,
        mem_per_node_mb=mem,
        gpus_per_node=gpus,
        gpu_type=gpu_type,
        time_limit_s=limit,
        **kw,  # type: ignore[arg-type]
    )
    return Job(
        job_id=job_id,
        name=f"job{job_id}",
        user="alice",
        state=JobState.PENDING,
        partitions=tuple(partitions),
        request=req,
        account=account,
        priority=priority,
        submit_time=NOW - 600 if submit is None else submit,
    )


def running(
    job_id: int,
    partition: str,
    on: Sequence[str],
    *,
    gpus: int = 1,
    gpu_type: str = "a100",
    cpus: int = 4,
    mem: int = 16_000,
    limit: int = 3600,
    started: int = NOW - 1800,
) -> Job:
    return Job(
        job_id=job_id,
        name=f"run{job_id}",
        user="bob",
        state=JobState.RUNNING,
        partitions=(partition,),
        request=JobRequest(
            nodes_min=len(on),
            cpus_min=cpus * len(on),
            mem_per_node_mb=mem,
            gpus_per_node=gpus,
            gpu_type=gpu_type,
            time_limit_s=limit,
        ),
        start_time=started,
        end_time=started + limit,
        nodes=tuple(on),
        gpus_alloc={gpu_type: gpus * len(on)} if gpus else {},
        cpus_alloc=cpus * len(on),
        memory_alloc_mb=mem * len(on),
        submit_time=started - 60,
    )


def snapshot(nodes: Sequence[Node], parts: Sequence[Partition], jobs: Sequence[Job]) -> Snapshot:
    return Snapshot(
        taken_at=NOW,
        nodes=tuple(nodes),
        partitions=tuple(parts),
        jobs=tuple(jobs),
        source="test",
    )


def hetero_cluster(jobs: Sequence[Job] = ()) -> Snapshot:
    """2 h100 nodes, 2 a100 nodes, 2 v100 nodes (4 GPUs each), 2 CPU nodes, 1 drained a100."""
    nodes = [
        node("h1", gpus={"h100": 4}),
        node("h2", gpus={"h100": 4}),
        node("a1", gpus={"a100": 4}),
        node("a2", gpus={"a100": 4}),
        node("a3", gpus={"a100": 4}, flags=["DRAIN"]),
        node("v1", gpus={"v100": 4}),
        node("v2", gpus={"v100": 4}),
        node("c1", cpus=128, mem=256_000),
        node("c2", cpus=128, mem=256_000),
    ]
    parts = [
        part("h100", ["h1", "h2"], max_time_s=86400),
        part("a100", ["a1", "a2", "a3"], max_time_s=86400),
        part("v100", ["v1", "v2"], max_time_s=2 * 86400),
        part("cpu", ["c1", "c2"], is_default=True, max_time_s=7 * 86400),
    ]
    return snapshot(nodes, parts, jobs)


def test_hetero_cluster_is_consistent() -> None:
    snap = hetero_cluster([pending(1, ["a100"])])
    names = {n.name for n in snap.nodes}
    for p in snap.partitions:
        assert set(p.nodes) <= names
    assert snap.pending[0].request.gpus_total() == 1
    assert not snap.node("a3").available


def test_running_builder_reserves_gpus() -> None:
    job = running(5, "a100", ["a1", "a2"], gpus=2)
    assert job.gpus_alloc == {"a100": 4}
    assert job.end_time == job.start_time + 3600  # type: ignore[operator]
