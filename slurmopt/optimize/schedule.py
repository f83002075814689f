"""List scheduling over node profiles: full runs, the greedy rules, the incremental evaluator.

Jobs are placed in priority order; each job takes the earliest start at which
its node count of nodes of its partition all fit it for its runtime there, and
reserves those nodes. Higher-priority jobs are never delayed by later ones (as
with Slurm's backfill reservations).

The incremental evaluator exploits two facts: partitions that share no node
never interact (they form separate *components*), and a job only affects jobs
after it in priority order. Moving job ``j`` from ``p`` to ``q`` re-schedules
only the jobs of the components of ``p`` and ``q`` from ``j``'s position on;
the earlier jobs of those components are replayed from their recorded
reservations (no search).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from slurmopt.model import Job, Node, Partition, Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.eligibility import Option
from slurmopt.optimize.profile import INF, Profiles

if TYPE_CHECKING:
    from slurmopt.optimize.problem import Problem
    from slurmopt.plans import Plan


def base_profiles(
    snap: Snapshot, cfg: OptimizeConfig, now: float, runtimes: dict[int, float] | Any
) -> Profiles:
    """Node profiles after the running jobs: free now, released at each job's (predicted) end.

    Unavailable (down, drained) nodes get no capacity. Allocation a node reports
    beyond what the visible jobs explain is released right after the last
    visible release.
    """
    index = {n.name: i for i, n in enumerate(snap.nodes)}
    caps = [(n.cpus, n.memory_mb, n.gpu_total) if n.available else (0, 0, 0) for n in snap.nodes]
    shares = [[0, 0, 0] for _ in snap.nodes]
    releases: list[tuple[int, float, int, int, int]] = []
    for job in snap.running:
        got = running_share(job, index, cfg, now, runtimes)
        if got is None:
            continue
        idx, c, m, g, end = got
        for n in idx:
            shares[n][0] += c
            shares[n][1] += m
            shares[n][2] += g
            releases.append((n, end, c, m, g))
    used = [node_used(n, sh) for n, sh in zip(snap.nodes, shares, strict=True)]
    return Profiles.build(now, caps, used, releases)


def running_share(
    job: Job, index: Mapping[str, int], cfg: OptimizeConfig, now: float, runtimes: Any
) -> tuple[list[int], int, int, int, float] | None:
    """A running job in :func:`base_profiles`: its nodes (indices), per-node CPUs,
    memory and GPUs, and when they are released (None: on no known node)."""
    idx = [index[x] for x in job.nodes if x in index]
    if not idx:
        return None
    k = len(idx)
    req = job.request
    cpus = job.cpus_alloc or max(req.cpus_min, req.ntasks * req.cpus_per_task)
    gpus = sum(job.gpus_alloc.values()) or req.gpus_total(k)
    mem = job.memory_alloc_mb or (req.mem_per_node_mb or 0) * k
    c, m, g = -(-cpus // k), -(-mem // k), -(-gpus // k)
    end = _running_end(
        job.job_id, job.start_time, job.end_time, req.time_limit_s, now, cfg, runtimes
    )
    if cfg.limit_ratio and not (cfg.use_predictions and job.job_id in runtimes):
        end = min(end, _share_end(job.partitions, job.start_time, req.time_limit_s, now, cfg))
    return idx, c, m, g, max(end, now + 1.0)


def node_used(node: Node, share: Sequence[int]) -> tuple[int, int, int]:
    """What :func:`base_profiles` counts as in use on ``node`` now: what it reports,
    or the running jobs' ``share`` (CPUs, memory, GPUs) where that is more."""
    return (
        max(node.cpus_alloc, share[0]),
        max(node.memory_alloc_mb, share[1]),
        max(sum(node.gpus_used.values()), share[2]),
    )


def _running_end(
    job_id: int,
    start: int | None,
    end: int | None,
    limit: int | None,
    now: float,
    cfg: OptimizeConfig,
    runtimes: Any,
) -> float:
    pred = runtimes.get(job_id) if cfg.use_predictions else None
    if pred is not None and start:
        # A job that outlived its prediction (the prediction is older than now)
        # is not about to end: expect it to run as long again, as
        # slurmopt.history.predict.repredict does, never past its limit.
        elapsed = now - start
        guess = float(pred) if pred > elapsed else max(2.0 * elapsed, 1.0)
        cap = end or (start + limit if limit else None)
        return float(min(start + guess, cap)) if cap else float(start + guess)
    if end:
        return float(end)
    if start and limit:
        return float(start + limit)
    return now + cfg.default_runtime_s


def _share_end(
    partitions: Sequence[str], start: int | None, limit: int | None, now: float, cfg: OptimizeConfig
) -> float:
    """Expected end of a running job without a prediction, from ``cfg.limit_ratio``.

    The share of its limit jobs of its partition used (learned; ``'*'``: any
    partition); a job that outlived that share is expected to run as long again
    as it has so far (as :func:`_running_end` does for an outlived prediction).
    Never past the limit; ``inf`` when there is no share or no start and limit.
    """
    if not (start and limit):
        return INF
    ratio = next((cfg.limit_ratio[p] for p in partitions[:1] if p in cfg.limit_ratio), None)
    if ratio is None:
        ratio = cfg.limit_ratio.get("*")
    if ratio is None:
        return INF
    elapsed = now - start
    guess = ratio * limit
    if guess <= elapsed:
        guess = max(2.0 * elapsed, 1.0)
    return float(start + min(guess, float(limit)))


def components(
    parts: Sequence[Partition], base: Profiles, snap: Snapshot
) -> tuple[list[int], list[list[int]]]:
    """Groups of partitions sharing available nodes: component of each partition, its nodes."""
    index = {n.name: i for i, n in enumerate(snap.nodes)}
    parent = list(range(len(parts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[int, int] = {}
    for pi, p in enumerate(parts):
        for name in p.nodes:
            n = index.get(name)
            if n is None or (base.cap_cpu[n] == 0 and base.cap_gpu[n] == 0):
                continue
            if n in owner:
                parent[find(pi)] = find(owner[n])
            else:
                owner[n] = pi
    roots = sorted({find(p) for p in range(len(parts))})
    cid = {r: i for i, r in enumerate(roots)}
    comp_of_part = [cid[find(p)] for p in range(len(parts))]
    comp_nodes: list[list[int]] = [[] for _ in roots]
    for n, pi in sorted(owner.items()):
        comp_nodes[comp_of_part[pi]].append(n)
    return comp_of_part, comp_nodes


def place(
    prof: Profiles,
    opt: Option,
    t0: float,
    bound: float = INF,
    lbs: dict[tuple[int, int, int, float], dict[int, float]] | None = None,
) -> tuple[float, list[int]]:
    """Earliest start of an option from ``t0`` (and before ``bound``), and its nodes.

    ``lbs``: the search bounds of :meth:`Profiles.find_start` per demand and ``t0``,
    for a caller that places jobs one after another on one profile (list scheduling).
    """
    lb = None
    if lbs is not None:
        key = (opt.cpu, opt.mem, opt.gpu, t0)
        lb = lbs.get(key)
        if lb is None:
            lb = lbs[key] = {}
    return prof.find_start(
        opt.nodes, opt.n_nodes, t0, opt.runtime, opt.cpu, opt.mem, opt.gpu, bound, lb
    )


def commit(prof: Profiles, opt: Option, start: float, nodes: Sequence[int]) -> None:
    """Reserve the option's demand on ``nodes`` from ``start``."""
    if math.isinf(start):
        return
    for n in nodes:
        c, m, g = prof.demand(n, opt.cpu, opt.mem, opt.gpu)
        prof.reserve(n, start, opt.runtime, c, m, g)


class Run(NamedTuple):
    """One list-scheduling pass: partition, start and nodes per scheduled job (a NamedTuple:
    cheap to define on optsub's submit path; its lists and profiles stay mutable)."""

    parts: list[int]
    starts: list[float]
    picks: list[list[int]]
    prof: Profiles


def run(problem: Problem, parts: list[int], rule: str | None = None) -> Run:
    """Schedule every job in priority order.

    ``rule`` None follows ``parts``; ``"start"`` / ``"end"`` choose, for each
    variable job, the eligible partition with the earliest start / completion
    given the jobs already placed (ties: the order the job lists its
    partitions in, then partition index).
    """
    prof = problem.base.copy()
    starts: list[float] = []
    picks: list[list[int]] = []
    parts = list(parts)
    for o, opts in enumerate(problem.options):
        t0 = problem.t0[o]
        if rule is None or problem.fixed[o] >= 0:
            opt = opts[parts[o]]
            s, ns = place(prof, opt, t0)
        else:
            rank = {p: i for i, p in enumerate(problem.listed[o])}
            order = sorted(opts, key=lambda p, rank=rank: (rank.get(p, len(rank)), p))  # type: ignore[misc]
            best, s, ns, opt = INF, INF, [], opts[order[0]]
            for p in order:
                o2 = opts[p]
                extra = o2.runtime if rule == "end" else 0.0
                s2, ns2 = place(prof, o2, t0, best - extra)
                if s2 + extra < best:
                    best, s, ns, opt = s2 + extra, s2, ns2, o2
            parts[o] = opt.part
        commit(prof, opt, s, ns)
        starts.append(s)
        picks.append(ns)
    return Run(parts, starts, picks, prof)


def component_value(
    problem: Problem, c: int, members: Sequence[int], parts: Sequence[int]
) -> tuple[float, float, float]:
    """List-schedule the jobs ``members`` (priority order) of component ``c`` alone.

    Returns the sums of :func:`contribution`: ``(weighted term, last end, penalty)``.
    """
    prof = problem.base.copy(problem.comp_nodes[c])
    total, end, pen = 0.0, -INF, 0.0
    for o in members:
        opt = problem.options[o][parts[o]]
        s, ns = place(prof, opt, problem.t0[o])
        commit(prof, opt, s, ns)
        t, e, pn = contribution(problem, o, parts[o], s)
        total += t
        pen += pn
        end = max(end, e)
    return total, end, pen


def contribution(problem: Problem, o: int, p: int, start: float) -> tuple[float, float, float]:
    """``(weighted term, end, weighted penalties)`` of job ``o`` on ``p`` from ``start``:
    the move penalty outside the partitions it lists, the preemption penalty in a
    partition where it may be preempted (:func:`~slurmopt.optimize.eligibility.preemptable`)."""
    opt = problem.options[o][p]
    w = problem.weight[o]
    cur = problem.current[o]
    pen = w * problem.config.move_penalty_s if (cur and p not in cur) else 0.0
    if problem.preemptable[p]:  # it may be preempted there
        pen += w * problem.config.preempt_penalty_s
    end = start + opt.runtime
    if problem.config.objective == "wait":
        return w * (start - problem.submit[o]), end, pen
    return w * (end - problem.submit[o]), end, pen


def combine(problem: Problem, total: float, end: float, pen: float) -> float:
    """Objective value from the sums of :func:`contribution`."""
    if problem.config.objective == "makespan":
        return (end - problem.now if end > -INF else 0.0) + pen / problem.total_weight
    return (total + pen) / problem.total_weight


def objective(problem: Problem, parts: Sequence[int], starts: Sequence[float]) -> float:
    """Objective of a full schedule (lower is better)."""
    total, end, pen = 0.0, -INF, 0.0
    for o, s in enumerate(starts):
        t, e, pn = contribution(problem, o, parts[o], s)
        total += t
        pen += pn
        end = max(end, e)
    return combine(problem, total, end, pen)


def to_plan(
    problem: Problem,
    r: Run,
    *,
    solver: str,
    seed: int | None,
    wall_s: float,
    stats: dict[str, Any] | Any,
) -> Plan:
    """A :class:`~slurmopt.model.Plan` from a run."""
    from slurmopt.plans import Placement, Plan

    placements = []
    for o, job in enumerate(problem.jobs):
        opt = problem.options[o][r.parts[o]]
        placements.append(
            Placement(
                job.job_id, problem.partitions[opt.part].name, r.starts[o], opt.runtime, opt.rewrite
            )
        )
    full = {**problem.build_stats, **dict(stats)}
    return Plan(
        tuple(placements),
        objective(problem, r.parts, r.starts),
        solver,
        seed,
        wall_s,
        full,
        dict(problem.unplaced),
    )


def candidate_table(problem: Problem, parts: list[int]) -> list[dict[str, Any]]:
    """Rows per scheduled job: chosen partition and every allowed partition's outlook."""
    prof = problem.base.copy()
    rows: list[dict[str, Any]] = []
    for o, job in enumerate(problem.jobs):
        t0 = problem.t0[o]
        opts = problem.options[o]
        cands: list[dict[str, Any]] = []
        chosen: tuple[float, list[int]] = (INF, [])
        for p in sorted(opts):
            s, ns = place(prof, opts[p], t0)
            if p == parts[o]:
                chosen = (s, ns)
            o2 = opts[p]
            cands.append(
                {
                    "partition": problem.partitions[p].name,
                    "eligible": True,
                    "reason": None,
                    "start": s,
                    "runtime": o2.runtime,
                    "end": s + o2.runtime,
                    "gpu_type": o2.gpu_type,
                    "rewrite": o2.rewrite,
                    "speed": o2.speed,
                }
            )
        for name, why in sorted(problem.reasons.get(job.job_id, {}).items()):
            cands.append(
                {
                    "partition": name,
                    "eligible": False,
                    "reason": why,
                    "start": None,
                    "runtime": None,
                    "end": None,
                    "gpu_type": None,
                    "rewrite": None,
                    "speed": None,
                }
            )
        cands.sort(key=lambda c: c["partition"])
        commit(prof, opts[parts[o]], *chosen)
        rows.append(
            {
                "job_id": job.job_id,
                "key": job.key,
                "name": job.name,
                "priority": job.priority,
                "variable": problem.fixed[o] < 0,
                "current": ",".join(job.partitions),
                "chosen": problem.partitions[parts[o]].name,
                "candidates": cands,
            }
        )
    return rows


def calibrated_rate(problem: Problem) -> float:
    """Deterministic estimate of incremental ``delta()`` calls per second.

    A delta re-schedules about half the jobs of one or two components, each
    job scanning its option's nodes. The constant was measured with
    ``scripts/bench/scale.py --calibrate`` on the 2-core development VM.
    """
    n = len(problem.jobs)
    if n == 0:
        return 1e6
    comps = max(1, len(problem.comp_nodes))
    per_comp = n / comps
    nodes = (
        sum(
            len(
                problem.options[o][
                    problem.fixed[o] if problem.fixed[o] >= 0 else min(problem.options[o])
                ].nodes
            )
            for o in range(n)
        )
        / n
    )
    work = 1.0 + per_comp * (1.0 + nodes / 8.0)
    return max(5.0, RATE_CONSTANT / work)


RATE_CONSTANT = 200_000.0
"""Measured constants (``delta()`` per CPU second x work) were 370,000 to 630,000 on
the 2-core development VM over clusters of 48 to 2,000 nodes; this one is about half,
so the step budgets still fit the wall clock on a machine loaded twice over."""
