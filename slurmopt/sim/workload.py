"""From trace jobs to simulator jobs: shapes, eligibility, runtimes, job types, load.

* **Shape on a partition.** A job with ``nodes == 1`` (an Alibaba pod) needs one
  node with its CPUs, whole GPUs and memory. A job that may spread (SWF) asks for
  a total; on a partition whose largest node has ``g`` GPUs (``c`` CPUs for a
  job without GPUs) it takes ``k = ceil(total / g)`` nodes and ``ceil(total / k)``
  per node, as ``sbatch --gpus=N`` / ``-n N`` would be laid out.
* **Eligibility.** A partition is eligible when it is UP, the shape fits in its
  node count and ``max_nodes``, at least ``k`` of its nodes are large enough,
  the GPU type matches (``gpu_type`` of the trace), and the job's GPU-ness
  matches: jobs with GPUs go to partitions with GPUs; jobs without GPUs go to
  CPU-only partitions when the cluster has any, else anywhere.
* **Runtime** on a partition: see :mod:`slurmopt.sim.cluster` (speed convention).
  The scheduler's estimate is the trace's requested time when there is one,
  else the job's real runtime there (an exact estimate).
* **Job types.** When the trace has no job type, one of the measured job types
  is assigned deterministically: CRC-32 of a workload key, modulo the number of
  types in sorted order. The key is the user for SWF (a user tends to run one
  kind of job) and the request shape (CPUs, memory, GPUs, GPU share, QoS) for
  Alibaba pods (replicas of one workload share a shape).
"""

from __future__ import annotations

import csv
import math
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from slurmopt.sim.cluster import SimCluster, SimPartition
from slurmopt.sim.traces import Trace, TraceJob

Shape = tuple[int, int, int, int]
"""(nodes, milli-CPUs per node, GPUs per node, MiB per node)."""


@dataclass(slots=True, eq=False)
class SimJob:
    """A job inside the simulator (mutable; identity is ``idx``)."""

    idx: int
    job: TraceJob
    submit: int
    job_type: str | None
    allowed: tuple[int, ...]
    """Eligible partition indices, in spec order."""
    shapes: dict[int, Shape]
    runtime: dict[int, int]
    est: dict[int, int]
    parts: tuple[int, ...] = ()
    """Partitions the job is currently submitted to (the policy's choice)."""
    start: int = -1
    finish: int = -1
    part: int = -1
    nodes: tuple[int, ...] = ()
    est_end: int = 0
    types: tuple[str, ...] = ()
    """Allowed GPU types (empty: any)."""

    @property
    def best_runtime(self) -> int:
        return min(self.runtime.values())


def job_key(job: TraceJob) -> str:
    """The workload key used to pick a job type (see the module docstring)."""
    if job.user is not None:
        return f"user:{job.user}"
    return (
        f"shape:{job.cpus:g}:{job.memory_mb or 0:g}:{job.gpus:g}:{job.queue or ''}"
        f":{job.gpu_type or ''}"
    )


def assign_job_type(job: TraceJob, job_types: Sequence[str]) -> str | None:
    """The trace's own job type, else a deterministic pick from ``job_types``."""
    if job.job_type is not None or not job_types:
        return job.job_type
    types = sorted(job_types)
    return types[zlib.crc32(job_key(job).encode()) % len(types)]


def scale_load(trace: Trace, factor: float) -> Trace:
    """Divide submit times by ``factor`` (> 1: more load, inter-arrival times shrink)."""
    if factor <= 0:
        raise ValueError("load factor must be > 0")
    jobs = tuple(replace(j, submit=int(j.submit / factor)) for j in trace.jobs)
    return replace(trace, jobs=jobs, name=f"{trace.name} x{factor:g} load")


def as_gpu_jobs(trace: Trace, gpus_per_cpu: float = 1.0) -> Trace:
    """Map a CPU trace onto GPUs: each processor becomes ``gpus_per_cpu`` GPUs."""
    jobs = tuple(
        replace(j, gpus=float(max(1, round(j.cpus * gpus_per_cpu))), cpus=j.cpus)
        for j in trace.jobs
    )
    return replace(trace, jobs=jobs)


def load_gavel(path: str | Path) -> dict[str, dict[str, float]]:
    """Gavel's single-GPU throughputs: ``{job_type: {gpu_type: iterations/s}}``.

    Reads ``gavel_isolated_throughputs.csv`` (``gpu_type, job_type,
    scale_factor_gpus, throughput_iters_per_s``); rows with one GPU only.
    """
    out: dict[str, dict[str, float]] = defaultdict(dict)
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if int(row["scale_factor_gpus"]) != 1:
                continue
            out[row["job_type"]][row["gpu_type"]] = float(row["throughput_iters_per_s"])
    return dict(out)


def shape_on(job: TraceJob, part: SimPartition) -> Shape:
    """The job's shape on ``part`` (see the module docstring)."""
    cpu = max(1, round(job.cpus * 1000))
    gpu = job.gpus_whole
    mem = math.ceil(job.memory_mb or 0)
    if job.nodes == 1:
        return (1, cpu, gpu, mem)
    if job.nodes is not None and job.nodes > 1:
        k = job.nodes
    elif gpu > 0 and part.max_gpus_per_node > 0:
        k = math.ceil(gpu / part.max_gpus_per_node)
    else:
        k = math.ceil(cpu / part.max_cpus_per_node)
    return (k, math.ceil(cpu / k), math.ceil(gpu / k), math.ceil(mem / k))


def _eligible(cluster: SimCluster, job: TraceJob, part: SimPartition, shape: Shape) -> bool:
    if not part.up:
        return False
    k, c, g, m = shape
    if k > len(part.nodes) or (part.max_nodes is not None and k > part.max_nodes):
        return False
    types = job.gpu_types
    if g > 0 and types and not set(types) & set(part.gpu_types):
        return False
    big = 0
    for i in part.nodes:
        if cluster.cap_cpu[i] >= c and cluster.cap_gpu[i] >= g and cluster.cap_mem[i] >= m:
            if g > 0 and types and cluster.gpu_type[i] not in types:
                continue
            big += 1
            if big >= k:
                return True
    return False


def build_jobs(
    trace: Trace, cluster: SimCluster, job_types: Sequence[str] = ()
) -> tuple[list[SimJob], list[TraceJob]]:
    """Turn trace jobs into :class:`SimJob` (submit order); return also those that fit nowhere."""
    parts = cluster.partitions
    has_cpu_parts = any(not p.has_gpus and p.up for p in parts)
    out: list[SimJob] = []
    rejected: list[TraceJob] = []
    for job in trace.jobs:
        wants_gpu = job.gpus > 0
        jt = assign_job_type(job, job_types) if wants_gpu else job.job_type
        ref = cluster.reference_speed(jt) if wants_gpu else 1.0
        allowed: list[int] = []
        shapes: dict[int, Shape] = {}
        runtime: dict[int, int] = {}
        est: dict[int, int] = {}
        for p in parts:
            if wants_gpu != p.has_gpus and (wants_gpu or has_cpu_parts):
                continue
            shape = shape_on(job, p)
            if not _eligible(cluster, job, p, shape):
                continue
            speed = cluster.partition_speed(jt, p) if wants_gpu else 1.0
            rt = max(1, round(job.runtime * ref / speed)) if job.runtime > 0 else 1
            limit = job.requested_time
            if p.max_time_s is not None and limit is not None and limit > p.max_time_s:
                continue
            allowed.append(p.index)
            shapes[p.index] = shape
            runtime[p.index] = rt
            est[p.index] = limit if limit is not None and limit > 0 else rt
        if not allowed:
            rejected.append(job)
            continue
        out.append(
            SimJob(
                idx=len(out),
                job=job,
                submit=job.submit,
                job_type=jt,
                allowed=tuple(allowed),
                shapes=shapes,
                runtime=runtime,
                est=est,
                types=job.gpu_types,
            )
        )
    return out, rejected
