"""The time-aware placement problem (ARCHITECTURE.md, "The placement problem").

:meth:`Problem.build` turns a :class:`~slurmopt.model.Snapshot` into:

* eligibility per (job, partition): an :class:`~slurmopt.optimize.eligibility.Option`
  or a human-readable reason (:mod:`slurmopt.optimize.eligibility`);
* one availability profile per node (:mod:`slurmopt.optimize.profile`): free
  now, released when running jobs end at their time limit (or predicted end);
  down and drained nodes have no capacity;
* the scheduled jobs in Slurm's queue order (partition PriorityTier, priority,
  submit time, id). A job is a *variable* (one gene, the partition index) when
  it is in the ``window`` of at least one of its eligible partitions and the
  caller asked for it (default: every pending job); a new submission passed in
  ``jobs`` is always one. Other pending jobs keep their current partition (the
  first eligible one they list) and still occupy capacity. Jobs after the last
  variable one in priority order cannot delay it and are left out.

Runtime convention: see :mod:`slurmopt.optimize.eligibility` (a job's limit or
prediction holds for the slowest partition it lists; runtime elsewhere scales
with the speed ratio; a partition where the job would outrun its limit is
ineligible). Held jobs are ignored; ``eligible_time`` (``--begin``) delays a
start.

An assignment (a partition per variable job) is evaluated by list scheduling:
in priority order, each job starts at the earliest time its node count of
nodes all fit it for its runtime on that partition (see
:mod:`slurmopt.optimize.schedule`). The objective is in seconds, lower is
better: the weighted mean completion (start + runtime - submit; default), the
weighted mean wait, or the makespan from now; plus ``move_penalty_s`` per
(weighted) job placed outside the partitions it currently lists.

No numpy here: optsub builds problems on its submit path.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from slurmopt.lazylog import get_logger
from slurmopt.model import Job, Snapshot
from slurmopt.optimize import schedule as sched
from slurmopt.optimize.access import AccessIndex
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.eligibility import (
    JobContext,
    Option,
    QosUse,
    allowed_set,
    check,
    gpu_type_in,
    partition_gpu_types,
    preemptable,
    qos_reason,
    speed_for,
)
from slurmopt.optimize.profile import Profiles

if TYPE_CHECKING:
    from slurmopt.optimize.incremental import Incremental
    from slurmopt.optimize.static import StaticProblem
    from slurmopt.plans import Plan

log = get_logger(__name__)

_MEMO_SIZE = 4096
"""Component results kept by :meth:`Problem.evaluate` (cleared when full)."""


class Problem:
    """A snapshot seen as one partition choice per variable job (implements ``Assignable``).

    Build it with :meth:`build`. Gene ``g`` is job ``self.jobs[self.var_pos[g]]``.
    """

    def __init__(  # noqa: PLR0913  the built Problem's tables, from _build only
        self,
        snapshot: Snapshot,
        config: OptimizeConfig,
        now: float,
        jobs: list[Job],
        options: list[dict[int, Option]],
        fixed: list[int],
        reasons: dict[int, dict[str, str]],
        unplaced: dict[int, str],
        base: Profiles,
        stats: dict[str, Any],
        comps: tuple[list[int], list[list[int]]] | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.config = config
        self.now = float(now)
        self.partitions = snapshot.partitions
        self.jobs = jobs
        """Scheduled jobs in priority order (variable and fixed)."""
        self.options = options
        """Per scheduled job: eligible partition index -> Option."""
        self.fixed = fixed
        """Per scheduled job: -1 for a variable job, else its fixed partition index."""
        self.reasons = reasons
        """job id -> partition name -> why the job can never run there."""
        self.unplaced = unplaced
        self.base = base
        self.build_stats = stats
        self.var_pos = [o for o, f in enumerate(fixed) if f < 0]
        self._choices = [sorted(options[o]) for o in self.var_pos]
        self.t0 = [max(self.now, float(j.eligible_time or 0)) for j in jobs]
        self.submit = [float(j.submit_time if j.submit_time is not None else now) for j in jobs]
        names = {p.name: i for i, p in enumerate(self.partitions)}
        self.listed = [[names[p] for p in j.partitions if p in names] for j in jobs]
        """Per scheduled job: the partitions it lists, in its order (Slurm's preference)."""
        self.current = [frozenset(ps) for ps in self.listed]
        self.weight = [_weight(j, config) for j in jobs]
        self.total_weight = sum(self.weight) or 1.0
        self.comp_of_part, self.comp_nodes = comps or sched.components(
            self.partitions, base, snapshot
        )
        self._memo: dict[tuple[Any, ...], tuple[float, float, float]] = {}
        self._seeds: dict[str, list[int]] | None = None
        self._static: StaticProblem | None = None
        self.allowed_sets: dict[int, frozenset[str]] = {}
        """job id -> the partitions its user allowed (every considered pending job)."""
        may_preempt = preemptable(self.partitions)
        self.preemptable = [p.name in may_preempt for p in self.partitions]
        """Per partition: a job placed there may be preempted (costs ``preempt_penalty_s``)."""

    # -- construction ---------------------------------------------------------
    @classmethod
    def build(  # noqa: PLR0913  keyword-only options of the one builder (callers pass few)
        cls,
        snapshot: Snapshot,
        config: OptimizeConfig | None = None,
        *,
        jobs: Sequence[Job] | None = None,
        now: float | None = None,
        runtimes: Mapping[int, float] | None = None,
        allowed: Mapping[int, Collection[str]] | None = None,
        rewritable: Collection[int] = (),
        pinned: Collection[int] = (),
        base: Profiles | None = None,
        memo: dict[tuple[Any, ...], Any] | None = None,
    ) -> Problem:
        """Build the problem.

        Args:
            snapshot: the cluster state.
            config: the ``[optimize]`` configuration (default: defaults).
            jobs: the jobs to place (default: every pending, unheld job), within
                the window. Jobs not in the snapshot (optsub's new submission) are
                added as pending and always placed, whatever the window. Other
                pending jobs keep their partition.
            now: the time origin (default: ``snapshot.taken_at``).
            runtimes: predicted runtimes in seconds by job id (pending: at the
                speed of the slowest partition the job lists; running: total runtime).
            allowed: per job id, the partitions its user allowed (default: the
                partitions the job lists, or every partition when none).
            rewritable: jobs whose typed GPU request may be rewritten to another type.
            pinned: jobs whose GPU type must never change (wins over ``rewritable``).
            base: the availability profiles to schedule on, instead of the ones
                built from the snapshot's running jobs (the caller's own, e.g. a
                queue already list-scheduled; the simulator keeps one between
                decisions). Not copied: the problem's schedulers copy before changing.
            memo: the per-build caches (eligibility per partition and demand, the
                partition components) kept across builds by a caller that
                guarantees the snapshots' nodes and partitions (their capacity,
                availability, GPUs, features) are the same in every build.
        """
        return _build(
            cls,
            snapshot,
            config or OptimizeConfig(),
            jobs,
            now,
            runtimes,
            allowed,
            rewritable,
            pinned,
            base,
            memo,
        )

    # -- Assignable -------------------------------------------------------------
    @property
    def n_jobs(self) -> int:
        return len(self.var_pos)

    @property
    def n_parts(self) -> int:
        return len(self.partitions)

    @property
    def choices(self) -> Sequence[Sequence[int]]:
        return self._choices

    @property
    def evals_per_second(self) -> float:
        """Calibrated incremental ``delta()`` rate (see ``search.Calibrated``)."""
        return sched.calibrated_rate(self)

    def parts_of(self, genes: Sequence[int]) -> list[int]:
        """Partition per scheduled job for an assignment of the variables."""
        parts = list(self.fixed)
        for g, o in enumerate(self.var_pos):
            parts[o] = int(genes[g])
        return parts

    def evaluate(self, assign: Sequence[int]) -> float:
        """Objective of a full assignment (list scheduling per component, memoized).

        Components (groups of partitions sharing nodes) are scheduled apart; a
        component whose jobs sit where they sat in a recent evaluation reuses
        its result (GA offspring share most components with their parents).
        """
        parts = self.parts_of(self.repair(list(assign)))
        members: list[list[int]] = [[] for _ in self.comp_nodes]
        for o, p in enumerate(parts):
            members[self.comp_of_part[p]].append(o)
        total, end, pen = 0.0, -math.inf, 0.0
        for c, mem in enumerate(members):
            if not mem:
                continue
            key = (c, tuple(mem), tuple(parts[o] for o in mem))
            hit = self._memo.get(key)
            if hit is None:
                hit = sched.component_value(self, c, mem, parts)
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = hit
            total += hit[0]
            end = max(end, hit[1])
            pen += hit[2]
        return sched.combine(self, total, end, pen)

    def feasible(self, assign: Sequence[int]) -> bool:
        """Every gene is an eligible partition (capacity holds by construction)."""
        return len(assign) == self.n_jobs and all(
            g in self.options[o] for g, o in zip(assign, self.var_pos, strict=True)
        )

    def repair(self, assign: list[int]) -> list[int]:
        """Genes outside a job's choices go to its current (or first) eligible partition."""
        out = list(assign)
        for g, o in enumerate(self.var_pos):
            if out[g] not in self.options[o]:
                out[g] = self.default_part(o)
        return out

    def incremental(self, assign: Sequence[int]) -> Incremental:
        from slurmopt.optimize.incremental import Incremental  # not on optsub's path

        return Incremental(self, self.repair(list(assign)))

    def initial_assignments(self) -> dict[str, list[int]]:
        """The greedy baselines' plans, by policy name (seeds for GA, SA and ``auto``).

        Computed once per problem (they are deterministic); callers get copies.
        """
        if self._seeds is None:
            from slurmopt.optimize import greedy

            self._seeds = {name: list(fn(self)) for name, fn in greedy.GENES.items()}
        return {name: list(genes) for name, genes in self._seeds.items()}

    def default_part(self, o: int) -> int:
        """The partition a scheduled job keeps when nobody moves it (first eligible listed)."""
        for p in self.listed[o]:
            if p in self.options[o]:
                return p
        return min(self.options[o])

    def current_genes(self) -> list[int]:
        """Every variable job where it already is (the "do nothing" plan)."""
        return [self.default_part(o) for o in self.var_pos]

    # -- results ----------------------------------------------------------------
    def plan_from(
        self,
        genes: Sequence[int],
        *,
        solver: str = "",
        seed: int | None = None,
        wall_s: float = 0.0,
        stats: Mapping[str, Any] | None = None,
    ) -> Plan:
        """The :class:`~slurmopt.model.Plan` of an assignment (every scheduled job placed)."""
        run = sched.run(self, self.parts_of(self.repair(list(genes))))
        return sched.to_plan(self, run, solver=solver, seed=seed, wall_s=wall_s, stats=stats or {})

    def candidates(self, genes: Sequence[int]) -> list[dict[str, Any]]:
        """Per scheduled job, every allowed partition: eligible or why not, start, runtime, end.

        The start on a partition other than the chosen one is where the job would
        start there, the higher-priority jobs being placed as in the plan.
        """
        return sched.candidate_table(self, self.parts_of(self.repair(list(genes))))

    def why_not(self, job_id: int, partition: str) -> str | None:
        """Why ``job_id`` can never run in ``partition`` (None: it can, or the job is unknown)."""
        if all(p.name != partition for p in self.partitions):
            return "no such partition"
        why = self.reasons.get(job_id, {}).get(partition)
        if why:
            return why
        allowed = self.allowed_sets.get(job_id)
        if allowed is not None and partition not in allowed:
            return f"not in the job's allowed partitions ({','.join(sorted(allowed))})"
        return None

    def to_static(self) -> StaticProblem:
        """The static generalized assignment form (cost matrix + capacity per resource kind).

        Cost of (job, partition) = weight x (wait estimate + runtime there) +
        move penalty, the wait estimate being the job's start there if it were
        alone on the current cluster (running jobs only). Capacity per partition:
        nodes, CPUs, memory and GPUs per GPU type of its available nodes;
        demand: node count, CPUs, memory and GPUs (of the type used there)
        times the job's share of time (runtime / horizon), so that capacity is
        "resource-seconds over the horizon" (the horizon is the last completion
        of the earliest-start plan). Built once per problem (cached).
        """
        if self._static is None:
            from slurmopt.optimize.static_form import to_static

            self._static = to_static(self)
        return self._static

    def static_form(self) -> StaticProblem:
        """Alias of :meth:`to_static` (what the MILP looks for)."""
        return self.to_static()


def _weight(job: Job, cfg: OptimizeConfig) -> float:
    if cfg.weight_by == "gpus":
        w = float(max(1, job.request.gpus_total()))
    elif cfg.weight_by == "nodes":
        w = float(max(1, job.request.nodes_min))
    else:
        w = 1.0
    return w * float(cfg.account_weight.get(job.account or "", 1.0))


def _priority_key(job: Job, tiers: Mapping[str, int]) -> tuple[int, int, int, bool, int]:
    """Slurm's queue order: partition PriorityTier, job priority, submit time, id.

    A job listing partitions of several tiers is queued in each with that
    partition's tier; one global order takes the lowest, so that a new
    multi-partition submission is never predicted to jump ahead of the jobs
    already waiting in the lower-tier partitions it lists.

    A job not yet submitted (optsub's new job, a routing or queue probe: negative
    ids) comes after every real job of the same priority submitted in the same
    second: Slurm gives it a larger id than all of them. (Without this, in a
    burst each new submission was predicted to start ahead of the submissions of
    the same second, and saw a partition they had just filled as free.)
    """
    tier = min((tiers.get(p, 1) for p in job.partitions), default=1)
    return (-tier, -job.priority, job.submit_time or 0, job.job_id < 0, job.job_id)


def _build(  # noqa: PLR0913, PLR0915  one pass over the jobs filling every table of the Problem
    cls: type[Problem],
    snap: Snapshot,
    cfg: OptimizeConfig,
    jobs: Sequence[Job] | None,
    now: float | None,
    runtimes: Mapping[int, float] | None,
    allowed: Mapping[int, Collection[str]] | None,
    rewritable: Collection[int],
    pinned: Collection[int],
    given: Profiles | None,
    memo: dict[tuple[Any, ...], Any] | None,
) -> Problem:
    t_now = float(snap.taken_at if now is None else now)
    runtimes = runtimes or {}
    allowed = allowed or {}
    rewritable, pinned = set(rewritable), set(pinned)
    base = sched.base_profiles(snap, cfg, t_now, runtimes) if given is None else given
    cache: dict[tuple[Any, ...], Any] = {} if memo is None else memo
    index, pnames, types = _indexes(snap, cache)
    pending = [j for j in snap.jobs if j.pending and not j.held]
    known = {j.job_id for j in pending}
    extra = [j for j in (jobs or ()) if j.job_id not in known]
    new_ids = {j.job_id for j in extra}
    tiers = {p.name: p.priority_tier for p in snap.partitions}
    pending = sorted(pending + extra, key=lambda j: _priority_key(j, tiers))
    wanted = None if jobs is None else {j.job_id for j in jobs}
    counts = [0] * len(snap.partitions)
    reasons: dict[int, dict[str, str]] = {}
    unplaced: dict[int, str] = {}
    cands: list[tuple[Job, dict[int, Option], bool]] = []
    allowed_sets: dict[int, frozenset[str]] = {}
    qos_limits = {q.name: q for q in snap.qos}
    qos_use = QosUse.of(snap.jobs, snap.partitions) if qos_limits else None
    access = AccessIndex(snap.associations)
    env = _Env(snap, cfg, t_now, index, pnames, types, cache, qos_limits, qos_use, access)
    by_job = memo is not None and not snap.reservations and not qos_limits and not snap.associations
    for job in pending:
        pred = runtimes.get(job.job_id)
        typed = job.request.gpu_type is not None
        pin = typed and (
            job.job_id in pinned or not (cfg.typed_gpu_rewritable or job.job_id in rewritable)
        )
        explicit = allowed.get(job.job_id)
        if by_job:
            mkey = ("job", job.job_id, job.partitions, pred, pin, _names(explicit))
            if mkey not in cache:
                cache[mkey] = _options(job, env, pred, pin, explicit)
            ok, opts, why = cache[mkey]
        else:
            ok, opts, why = _options(job, env, pred, pin, explicit)
        allowed_sets[job.job_id] = ok
        if why:
            reasons[job.job_id] = dict(why)
        if not opts:
            unplaced[job.job_id] = "; ".join(f"{p}: {r}" for p, r in sorted(why.items()))
            continue
        in_window = any(counts[p] < cfg.window for p in opts)
        for p in opts:
            counts[p] += 1
        variable = job.job_id in new_ids or (in_window and (wanted is None or job.job_id in wanted))
        cands.append((job, opts, variable))
    last = max((i for i, c in enumerate(cands) if c[2]), default=-1)
    kept = cands[: last + 1]
    fixed: list[int] = []
    for job, opts, variable in kept:
        if variable:
            fixed.append(-1)
        else:
            listed = [pnames[p] for p in job.partitions if p in pnames and pnames[p] in opts]
            fixed.append(listed[0] if listed else min(opts))
    stats = {
        "pending": len(pending),
        "variable": sum(1 for f in fixed if f < 0),
        "fixed": sum(1 for f in fixed if f >= 0),
        "beyond_window": len(cands) - len(kept),
        "unplaced": len(unplaced),
        "nodes": len(snap.nodes),
        "partitions": len(snap.partitions),
        "running": len(snap.running),
    }
    comps = None if memo is None else _components(snap, base, memo)
    prob = cls(
        snap,
        cfg,
        t_now,
        [c[0] for c in kept],
        [c[1] for c in kept],
        fixed,
        reasons,
        unplaced,
        base,
        stats,
        comps,
    )
    prob.allowed_sets = allowed_sets
    return prob


class _Env(NamedTuple):
    """What the eligibility of every job of one build shares (a NamedTuple: optsub builds
    a problem on its submit path, where a frozen dataclass costs about 0.7 ms to define)."""

    snap: Snapshot
    cfg: OptimizeConfig
    now: float
    node_index: dict[str, int]
    pnames: dict[str, int]
    types: list[Any]
    cache: dict[tuple[Any, ...], Any]
    qos_limits: dict[str, Any]
    qos_use: QosUse | None
    access: AccessIndex


def _names(explicit: Collection[str] | None) -> tuple[str, ...] | None:
    return None if explicit is None else tuple(sorted(explicit))


def _options(
    job: Job, env: _Env, pred: float | None, pin: bool, explicit: Collection[str] | None
) -> tuple[frozenset[str], dict[int, Option], dict[str, str]]:
    """One job's allowed set, eligible partitions (index -> Option) and reasons for the others.

    Memoized by :meth:`Problem.build`'s ``memo`` per job id, list, prediction,
    pin and allowed set (the caller guarantees a job id keeps its request).
    """
    snap, cfg, index, pnames, cache = env.snap, env.cfg, env.node_index, env.pnames, env.cache
    reserved = snap.reserved_nodes(job, env.now) if snap.reservations else {}
    who = env.access.identity(job)
    ctx = JobContext(
        allowed_set(job, snap.partitions, explicit),
        pin,
        pred,
        cfg.job_type(job),
        {index[n]: r for n, r in reserved.items() if n in index} or None,
        who,
    )
    s_user = _user_speed(job, ctx, snap, pnames, env.types, cfg, cache)
    opts: dict[int, Option] = {}
    why: dict[str, str] = {}
    for name in sorted(ctx.allowed):
        pi = pnames.get(name)
        if pi is None:
            why[name] = "no such partition"
            continue
        qos_why = qos_reason(job, snap.partitions[pi], env.qos_limits, env.qos_use, who.qos)
        if qos_why:
            why[name] = qos_why
            continue
        res = check(job, pi, snap.partitions[pi], snap.nodes, index, ctx, s_user, cfg, cache)
        if isinstance(res, str):
            why[name] = res
        else:
            opts[pi] = res
    return ctx.allowed, opts, why


def _indexes(
    snap: Snapshot, cache: dict[tuple[Any, ...], Any]
) -> tuple[dict[str, int], dict[str, int], list[Any]]:
    """Node and partition indices by name, GPUs per type of each partition (memoized)."""
    if ("index",) not in cache:
        nodes_at = {n.name: i for i, n in enumerate(snap.nodes)}
        cache[("index",)] = (
            nodes_at,
            {p.name: i for i, p in enumerate(snap.partitions)},
            [partition_gpu_types(p, snap.nodes, nodes_at) for p in snap.partitions],
        )
    got: tuple[dict[str, int], dict[str, int], list[Any]] = cache[("index",)]
    return got


def _components(
    snap: Snapshot, base: Profiles, memo: dict[tuple[Any, ...], Any]
) -> tuple[list[int], list[list[int]]]:
    if ("components",) not in memo:
        memo[("components",)] = sched.components(snap.partitions, base, snap)
    got: tuple[list[int], list[list[int]]] = memo[("components",)]
    return got


def _user_speed(
    job: Job,
    ctx: JobContext,
    snap: Snapshot,
    pnames: dict[str, int],
    types: list[Any],
    cfg: OptimizeConfig,
    cache: dict[tuple[Any, ...], Any],
) -> float:
    """Speed of the slowest partition the job lists (where its limit must hold)."""
    listed = [pnames[p] for p in job.partitions if p in pnames] or [
        pnames[p] for p in ctx.allowed if p in pnames
    ]
    key = ("user-speed", tuple(listed), job.request.wants_gpus, job.request.gpu_type, ctx.job_type)
    if key in cache:
        return float(cache[key])
    speeds = []
    for pi in listed:
        gtype = None
        if job.request.wants_gpus:
            gtype, _, why = gpu_type_in(job, types[pi], False, cfg)
            if why:
                continue
        speeds.append(speed_for(ctx.job_type, snap.partitions[pi], gtype, cfg))
    cache[key] = min(speeds) if speeds else 1.0
    return float(cache[key])
