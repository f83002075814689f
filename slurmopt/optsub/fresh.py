"""optsub's live refresh: what changed in Slurm since the state cache was written.

The controller writes the state cache once per cycle (every minute from
cron). Between two cycles jobs end and start: a cache that still shows the
H100s busy with jobs that ended sends new work to slower GPUs, where plain
``sbatch -p h100,...`` would have started on the H100s at once. So optsub
reads, with **one** ``squeue`` call (:mod:`slurmopt.slurm.live`) (a few milliseconds; no JSON, no
``scontrol``), the id, state, partition, elapsed time and nodes of every active
job, and corrects the cached snapshot:

* a cached job (running or pending) that ``squeue`` no longer lists has ended
  (or was cancelled): it is dropped, and what it held on its nodes is given
  back (the node's allocated CPUs, memory and GPUs are reduced by its share);
* a cached pending job that now runs (or completes) becomes a running job on
  the nodes and in the partition ``squeue`` shows, started ``elapsed`` ago;
* a running job the cache does not know (submitted and started since) is
  added with the CPUs ``squeue`` shows, the GPUs of its per-node GRES request
  (``%b``) and its time limit (``%l``);
* a pending job the cache and the spool overlay do not know (submitted since,
  by anyone; also optsub submissions whose spool records the controller has
  already ingested) is added with its partitions, node count, CPUs, GPUs per
  node, time limit and priority; held ones and ones waiting for a begin time
  or a dependency are not (they take nothing now).

What it does not see: node state changes (drain, down), changed priorities,
memory requests of jobs it adds; the next controller cycle brings those.

Where ``PrivateData=jobs`` hides other users' jobs, a missing job does not
mean an ended one: if the cache holds active jobs of other users and
``squeue`` shows none of them, nothing is changed (the source says so).

Standard library only (it runs on the submit path).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from slurmopt.model import Job, JobRequest, JobState, Node, Snapshot
from slurmopt.slurm.live import LiveJob

_RUNNING = frozenset({"R", "CG", "CF"})

_NOT_WAITING = ("JobHeld", "BeginTime", "Dependency")
"""Reasons of a pending job that will not take resources now (held, not yet eligible)."""
"""Compact states of a job that holds its nodes (the model's ``Job.running``)."""


def apply_live(
    snap: Snapshot,
    live: Mapping[int, LiveJob],
    *,
    now: float,
    user: str,
    cached: Sequence[int],
    accounted: Collection[int] = (),
) -> tuple[Snapshot, str]:
    """The snapshot as ``live`` shows it now, and a short note of what changed.

    ``cached`` are the ids of the jobs that came from the cache (not from the
    spool overlay); only they are checked for other users' visibility.
    ``accounted``: pending jobs the controller's queue digest already holds
    (a running one among them is not added again).
    """
    from slurmopt.slurm.hostlist import expand

    in_cache = set(cached)
    others = [j for j in snap.jobs if j.job_id in in_cache and j.user != user]
    if others and not any(j.job_id in live for j in others):
        return snap, "live refresh skipped: no job of another user visible (PrivateData?)"
    nodes = {n.name: n for n in snap.nodes}
    freed: dict[str, list[int]] = {}
    jobs: list[Job] = []
    ended = started = 0
    for job in snap.jobs:
        lj = live.get(job.job_id)
        if lj is None:
            ended += 1
            if job.running:
                _give_back(job, nodes, freed)
            continue
        if job.pending and lj.state in _RUNNING:
            names = tuple(expand(lj.nodes))
            if names:
                started += 1
                jobs.append(
                    replace(
                        job,
                        state=JobState.RUNNING,
                        partitions=(lj.partition,) if lj.partition else job.partitions[:1],
                        nodes=names,
                        start_time=int(now) - lj.elapsed,
                        end_time=None,
                    )
                )
                continue
        jobs.append(job)
    known = {j.job_id for j in snap.jobs}
    added = queued = 0
    for job_id, lj in live.items():
        if job_id in known or job_id in accounted:
            continue
        if lj.state in _RUNNING:
            names = tuple(expand(lj.nodes))
            if not names:
                continue
            added += 1
            k = len(names)
            jobs.append(
                Job(
                    job_id=job_id,
                    name="",
                    user=lj.user,
                    state=JobState.RUNNING,
                    partitions=(lj.partition,),
                    request=JobRequest(
                        nodes_min=k,
                        cpus_min=max(1, lj.cpus),
                        gpus_per_node=lj.gpus,
                        time_limit_s=lj.limit,
                    ),
                    start_time=int(now) - lj.elapsed,
                    nodes=names,
                    gpus_alloc={lj.gpu_type or "": lj.gpus * k} if lj.gpus else {},
                    cpus_alloc=lj.cpus,
                )
            )
        elif lj.state == "PD" and not lj.reason.startswith(_NOT_WAITING):
            queued += 1  # submitted since the cache, not by this user's optsub
            jobs.append(
                Job(
                    job_id=job_id,
                    name="",
                    user=lj.user,
                    state=JobState.PENDING,
                    partitions=tuple(p for p in lj.partition.split(",") if p),
                    request=JobRequest(
                        nodes_min=lj.n_nodes,
                        cpus_min=max(1, lj.cpus),
                        gpus_per_node=lj.gpus,
                        gpu_type=lj.gpu_type,
                        time_limit_s=lj.limit,
                    ),
                    priority=lj.priority,
                    submit_time=int(now) - 1,
                )
            )
    if not (ended or started or added or queued):
        return snap, "live: no change"
    new_nodes = tuple(_less(n, freed[n.name]) if n.name in freed else n for n in snap.nodes)
    note = f"live: {ended} ended, {started} started, {added} new running, {queued} new pending"
    return replace(snap, nodes=new_nodes, jobs=tuple(jobs)), note


def _give_back(job: Job, nodes: Mapping[str, Node], freed: dict[str, list[int]]) -> None:
    """Add a finished job's per-node share (CPUs, MiB, GPUs) to ``freed`` (as the profiles do)."""
    names = [x for x in job.nodes if x in nodes]
    if not names:
        return
    k = len(names)
    req = job.request
    cpus = job.cpus_alloc or max(req.cpus_min, req.ntasks * req.cpus_per_task)
    gpus = sum(job.gpus_alloc.values()) or req.gpus_total(k)
    mem = job.memory_alloc_mb or (req.mem_per_node_mb or 0) * k
    share = [-(-cpus // k), -(-mem // k), -(-gpus // k)]
    for x in names:
        acc = freed.setdefault(x, [0, 0, 0])
        for i in range(3):
            acc[i] += share[i]


def _less(node: Node, share: list[int]) -> Node:
    cpus, mem, gpus = share
    used = dict(node.gpus_used)
    for t in sorted(used, key=lambda t: -used[t]):
        take = min(gpus, used[t])
        used[t] -= take
        gpus -= take
    return replace(
        node,
        cpus_alloc=max(0, node.cpus_alloc - cpus),
        memory_alloc_mb=max(0, node.memory_alloc_mb - mem),
        gpus_used=used,
    )
