"""Shared fixtures: a small synthetic cluster (one congested A100 partition, one idle H100)."""

from __future__ import annotations

import pytest

from slurmopt.model import Job, JobRequest, JobState, Node, NodeState, Partition, Snapshot

NOW = 1_800_000_000


def make_snapshot(*, a100_busy: bool = True, h100_busy: bool = False, now: int = NOW) -> Snapshot:
    nodes = []
    jobs = []
    for i, (gtype, busy) in enumerate(
        (("a100", a100_busy), ("a100", a100_busy), ("h100", h100_busy), ("h100", h100_busy))
    ):
        name = f"g{i}"
        nodes.append(
            Node(
                name=name,
                state=NodeState.ALLOCATED if busy else NodeState.IDLE,
                cpus=32,
                cpus_alloc=32 if busy else 0,
                memory_mb=128000,
                memory_alloc_mb=128000 if busy else 0,
                gpus={gtype: 4},
                gpus_used={gtype: 4} if busy else {},
                features=(gtype, "gpu"),
                partitions=(gtype,),
            )
        )
        if busy:
            jobs.append(
                Job(
                    job_id=100 + i,
                    name="big",
                    user="other",
                    state=JobState.RUNNING,
                    partitions=(gtype,),
                    nodes=(name,),
                    request=JobRequest(
                        cpus_per_task=32,
                        cpus_min=32,
                        mem_per_node_mb=128000,
                        gpus_per_node=4,
                        gpu_type=gtype,
                        time_limit_s=86400,
                    ),
                    start_time=now - 60,
                    end_time=now + 86400 - 60,
                    cpus_alloc=32,
                    memory_alloc_mb=128000,
                    gpus_alloc={gtype: 4},
                    submit_time=now - 100,
                )
            )
    nodes.append(
        Node(
            name="c0",
            state=NodeState.IDLE,
            cpus=64,
            memory_mb=256000,
            features=("cpu",),
            partitions=("cpu",),
        )
    )
    parts = (
        Partition(name="a100", nodes=("g0", "g1"), max_time_s=2 * 86400, total_nodes=2),
        Partition(name="h100", nodes=("g2", "g3"), max_time_s=2 * 86400, total_nodes=2),
        Partition(name="cpu", nodes=("c0",), is_default=True, max_time_s=2 * 86400, total_nodes=1),
    )
    return Snapshot(
        taken_at=now,
        nodes=tuple(nodes),
        partitions=parts,
        jobs=tuple(jobs),
        slurm_version="22.05.8",
        cluster_name="t",
        source="test",
    )


@pytest.fixture
def snapshot() -> Snapshot:
    return make_snapshot()
