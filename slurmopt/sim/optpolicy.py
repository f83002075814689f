"""The optimizer's policies inside the simulator: the same Problem and solvers as live.

At every decision the simulator state becomes a :class:`slurmopt.model.Snapshot`
(nodes with their allocation, partitions, running and pending jobs) and the
live code path runs on it:

* at submission (what optsub does): ``Problem.build(snapshot, jobs=[new job],
  allowed=...)`` and optsub's own ranking rule,
  :func:`slurmopt.optimize.ranking.rank_new_job` (one list-scheduling pass
  over the queue ahead, the job placed on each allowed partition: earliest
  predicted end, ties to the default partition then the allowed order, the
  free-now rule);
* every controller interval (what the controller does, policies ``auto``,
  ``ga``, ``sa``): ``Problem.build`` over every pending job and
  ``make_plan(problem, policy)``; each job whose placement differs from its
  current partition is moved there.

Information given to the optimizer: GPU speeds and job-type affinities of the
spec (as ``OptimizeConfig.gpu_speed`` / ``affinity``, each simulated job tagged
``slurmopt:type=...`` in its comment), time limits from the trace, and, for
jobs without a limit (Alibaba), the runtime as a prediction, the same estimate
the simulated Slurm's backfill uses. Solvers get a fixed evaluation budget, so
a replay is deterministic for a seed.

How the live system ran can be modelled (``scripts/sim-vs-real`` replays real runs):

* ``gpu_speed``: the speeds the optimizer is configured with, when they are not
  the spec's (the jobs run at the spec's; a site that left ``[optimize]
  gpu_speed`` at its defaults ranks with those);
* ``learned``: runtimes as the controller predicts them each tick
  (:class:`ControllerPredictions`: slurmopt.history's ``Envelope`` over the jobs
  finished by then, the time limit for a job with no finished job like it);
  optsub ranks with the last tick's predictions (from the state cache) and a
  job the tick did not see runs to its limit;
* ``cache_lag``: seconds after a tick before optsub sees what it cached (the
  controller cycle's own duration);
* ``stale_cache``: optsub ranks on the last tick's snapshot (before issue 16's
  live refresh), see :meth:`OptimizerPolicy._cached`.

Snapshot objects are cached per node state and per job. One shortcut: with
an empty queue, a job that fits now on a partition of its best speed goes
there without building the problem (the ranking could only pick the same,
see :meth:`OptimizerPolicy._obvious`; ``shortcut=False`` turns it off).

Kept between submissions (issue 16; ``incremental=False`` turns it off, the
rankings are the same, ``verify=True`` checks each against a full rebuild):

* the queue's list schedule (the profiles after every pending job, in queue
  order, :func:`slurmopt.optimize.ranking.schedule_ahead`): while nothing
  started, ended or moved and no queued job's predicted start has passed, the
  next submission is ranked on it (a one-job problem with it as ``base``) and
  then appended to it, as a rebuild would schedule it (last in queue order);
* the running jobs' profiles (:mod:`slurmopt.sim.runbase`): after a start or
  an end only the nodes it touched are rebuilt;
* ``Problem.build``'s eligibility caches (``memo``): nodes never change
  capacity or availability here.

Not with ``learned``, ``cache_lag`` or ``stale_cache`` (predictions and the
cached state change at controller ticks) nor with ``limit_ratio``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from slurmopt.history.predict import Envelope, Estimate, JobInfo, repredict
from slurmopt.model import Job, JobRequest, JobState, Node, NodeState, Partition, Snapshot
from slurmopt.optimize import make_plan
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from slurmopt.optimize.profile import INF, Profiles
from slurmopt.optimize.ranking import Ranking, also_acceptable, rank_new_job, schedule_ahead
from slurmopt.optimize.schedule import base_profiles, commit, place
from slurmopt.optimize.search import Budget
from slurmopt.sim.runbase import RunningBase

if TYPE_CHECKING:
    from slurmopt.sim.engine import Simulator
    from slurmopt.sim.workload import SimJob

log = logging.getLogger(__name__)

OPT_POLICIES: tuple[str, ...] = ("optsub", "auto", "ga", "sa")
"""``optsub``: submit-time ranking only; the others also re-place pending jobs."""


def safe_type(job_type: str) -> str:
    """A job type name usable in a ``slurmopt:type=NAME`` tag."""
    return re.sub(r"[^\w.-]+", "_", job_type).strip("_")


class OptimizerPolicy:
    """Submit-time ranking and/or controller re-placement with the live optimizer."""

    def __init__(  # noqa: PLR0913  keyword-only options (make_policy's policy_options)
        self,
        name: str,
        *,
        seed: int = 0,
        at_submit: bool = True,
        replace_pending: bool = True,
        replan_evals: int = 1000,
        window: int = 100,
        shortcut: bool = True,
        stale_cache: bool = False,
        gpu_speed: Mapping[str, float] | None = None,
        learned: bool = False,
        cache_lag: int = 0,
        overlay_max: int | None = None,
        limit_ratio: bool = False,
        history: Sequence[FinishedJob] = (),
        choices: dict[int, str] | None = None,
        incremental: bool = True,
        verify: bool = False,
    ) -> None:
        self.name = name
        self.incremental = incremental and not (stale_cache or learned or cache_lag)
        """Keep the queue's list schedule between submissions (see :meth:`_mark_stale`;
        not with predictions that change at controller ticks, nor the state cache)."""
        self.verify = verify
        self.choices = choices
        """Filled with each ranked job's first choice (trace job id -> partition)."""
        """Check every ranking made on the kept schedule against a full rebuild (tests)."""
        self._ahead: Profiles | None = None
        self._first: dict[int, float] = {}
        """Per partition component: the earliest predicted start of a job queued there."""
        self._stale: set[int] = set()
        """Components whose kept schedule must be rebuilt before it is used."""
        self._kept: dict[int, int] = {}
        """Pending job -> component the kept schedule placed it in."""
        self._seen: set[int] = set()
        self._changes = -1
        self._moves = 0
        self._comp_of_part: list[int] = []
        self._comp_of_node: dict[int, int] = {}
        self.partial = 0
        self._static: tuple[Node, ...] | None = None
        self._base: RunningBase | None = None
        self._memo: dict[tuple[Any, ...], Any] = {}
        """Problem.build's per-partition caches: the simulator's nodes never change
        capacity or availability, only their free resources."""
        self.reused = 0
        self.stale_cache = stale_cache
        self._model(gpu_speed, learned, history, limit_ratio, cache_lag, overlay_max)
        """Rank submissions on the state as of the last controller tick (see :meth:`_cached`)."""
        self._cache: Snapshot | None = None
        self._since: list[SimJob] = []
        self.solver = name
        self.seed = seed
        self.at_submit = at_submit
        self.replace_pending = replace_pending
        self.replan_budget = Budget(seconds=5.0, max_evaluations=replan_evals)
        self.window = window
        self._cfg: OptimizeConfig | None = None
        self._parts: tuple[Partition, ...] = ()
        self._nodes: dict[int, tuple[tuple[int, int, int], Node]] = {}
        self._jobs: dict[tuple[int, tuple[int, ...], bool], Job] = {}
        self.shortcut = shortcut
        self.decisions = 0
        self.shortcuts = 0
        self.plans = 0
        """Controller re-plans that built a problem (pending jobs present)."""
        """Submissions decided by :meth:`_obvious` (no problem built)."""
        self.failures = 0

    def _model(
        self,
        gpu_speed: Mapping[str, float] | None,
        learned: bool,
        history: Sequence[FinishedJob],
        limit_ratio: bool,
        cache_lag: int,
        overlay_max: int | None,
    ) -> None:
        """The options that model how the live system ran (module docstring)."""
        self.gpu_speed = None if gpu_speed is None else {t.lower(): s for t, s in gpu_speed.items()}
        """The optimizer's configured GPU speeds (None: the spec's)."""
        self.learned: ControllerPredictions | None = None
        if learned:
            self.learned = ControllerPredictions(self._speed, history, limit_ratio=limit_ratio)
        self._tick_ratio: dict[str, float] = {}
        """``limit_ratio``: the shares the controller learned at this tick (its re-plan's)."""
        self._cached_ratio: dict[str, float] = self.learned.ratios([]) if self.learned else {}
        """The shares in the state cache optsub reads (from the start: the cycle before the
        first submission, on ``history``)."""
        self._ratio_cfgs: dict[tuple[tuple[str, float], ...], OptimizeConfig] = {}
        self.cache_lag = max(0, cache_lag)
        self.overlay_max = overlay_max
        """``stale_cache``: optsub's overlay counts at most this many of its newest
        submissions (it reads the tail of its spool file; None: all)."""
        self._ticks: list[tuple[int, Snapshot | None, dict[int, float], dict[str, float]]] = []
        """Ticks not yet visible to optsub: (visible from, snapshot, predictions, shares)."""
        self._cached_runtimes: dict[int, float] = {}
        """The predictions in the state cache optsub reads (``learned``)."""

    # -- snapshot -------------------------------------------------------------------
    def _config(self, sim: Simulator) -> OptimizeConfig:
        if self._cfg is None:
            spec = sim.cluster.spec
            speed = {t.lower(): s for t, s in spec.gpu_speed.items()}
            if self.gpu_speed is not None:
                speed = dict(self.gpu_speed)
            speed.setdefault("cpu", 1.0)
            aff = {
                safe_type(jt): {t.lower(): s / spec.gpu_speed.get(t, 1.0) for t, s in row.items()}
                for jt, row in spec.job_type_speed.items()
            }
            self._cfg = OptimizeConfig(gpu_speed=speed, affinity=aff, window=self.window)
            cl = sim.cluster
            self._parts = tuple(
                Partition(
                    name=p.name,
                    nodes=tuple(cl.names[i] for i in p.nodes),
                    state="UP" if p.up else "DOWN",
                    max_time_s=p.max_time_s,
                    max_nodes=p.max_nodes,
                    priority_tier=p.priority_tier,
                    total_cpus=p.total_cpus // 1000,
                    total_nodes=len(p.nodes),
                )
                for p in cl.partitions
            )
        return self._cfg

    def _with_ratio(self, sim: Simulator, ratio: Mapping[str, float]) -> OptimizeConfig:
        """The optimizer's configuration with these learned limit shares (``limit_ratio``)."""
        cfg = self._config(sim)
        if not ratio:
            return cfg
        key = tuple(sorted(ratio.items()))
        hit = self._ratio_cfgs.get(key)
        if hit is None:
            hit = self._ratio_cfgs[key] = replace(cfg, limit_ratio=dict(ratio))
        return hit

    def _speed(self, gpu_type: str) -> float:
        assert self._cfg is not None
        return self._cfg.speed_of_gpu(gpu_type)

    def _node(self, sim: Simulator, i: int) -> Node:
        cl = sim.cluster
        key = (cl.free_cpu[i], cl.free_gpu[i], cl.free_mem[i])
        hit = self._nodes.get(i)
        if hit is not None and hit[0] == key:
            return hit[1]
        cap_c, cap_g = cl.cap_cpu[i], cl.cap_gpu[i]
        used_c = cap_c - key[0]
        gtype = (cl.gpu_type[i] or "gpu").lower()
        state = NodeState.IDLE if used_c == 0 else NodeState.MIXED
        if key[0] == 0 or (cap_g and key[1] == 0):
            state = NodeState.ALLOCATED
        node = Node(
            name=cl.names[i],
            state=state,
            cpus=cap_c // 1000,
            cpus_alloc=math.ceil(used_c / 1000),
            memory_mb=cl.cap_mem[i],
            memory_alloc_mb=cl.cap_mem[i] - key[2],
            gpus={gtype: cap_g} if cap_g else {},
            gpus_used={gtype: cap_g - key[1]} if cap_g else {},
            partitions=tuple(cl.partitions[p].name for p in cl.node_parts[i]),
        )
        self._nodes[i] = (key, node)
        return node

    def _job(self, sim: Simulator, j: SimJob, running: bool) -> Job:
        key = (j.idx, j.parts, running)
        hit = self._jobs.get(key)
        if hit is not None:
            return hit
        cl = sim.cluster
        p0 = j.part if running else (j.parts or j.allowed)[0]
        k, c, g, m = j.shapes[p0]
        gtypes = [t.lower() for t in j.types]
        req = JobRequest(
            nodes_min=k,
            cpus_min=math.ceil(k * c / 1000),
            gpus_per_node=g,
            mem_per_node_mb=max(1, m),
            gpu_type=gtypes[0] if len(gtypes) == 1 else None,
            time_limit_s=j.job.requested_time,
        )
        names = cl.partitions
        tag = f"slurmopt:type={safe_type(j.job_type)}" if j.job_type else None
        if running:
            job = Job(
                job_id=j.idx,
                name=j.job.name,
                user=j.job.user or "sim",
                state=JobState.RUNNING,
                partitions=(names[j.part].name,),
                request=req,
                submit_time=j.submit,
                start_time=j.start,
                end_time=j.est_end,
                nodes=tuple(cl.names[i] for i in j.nodes),
                gpus_alloc={(cl.gpu_type[j.nodes[0]] or "gpu").lower(): k * g} if g else {},
                cpus_alloc=math.ceil(k * c / 1000),
                memory_alloc_mb=k * m,
                comment=tag,
            )
            self._jobs.pop((j.idx, j.parts, False), None)
        else:
            job = Job(
                job_id=j.idx,
                name=j.job.name,
                user=j.job.user or "sim",
                state=JobState.PENDING,
                partitions=tuple(names[p].name for p in j.parts),
                request=req,
                submit_time=j.submit,
                comment=tag,
            )
        self._jobs[key] = job
        return job

    def snapshot(self, sim: Simulator) -> Snapshot:
        """The simulator state as the live system would read it."""
        self._config(sim)
        nodes = tuple(self._node(sim, i) for i in range(len(sim.cluster.names)))
        jobs = [self._job(sim, j, True) for j in sim.running.values()]
        jobs += [self._job(sim, j, False) for j in sim.pending.values()]
        return Snapshot(
            taken_at=sim.now, nodes=nodes, partitions=self._parts, jobs=tuple(jobs), source="sim"
        )

    @staticmethod
    def _runtimes(sim: Simulator, jobs: list[SimJob]) -> dict[int, float]:
        """Predictions for jobs without a limit: the runtime on the slowest listed partition."""
        out: dict[int, float] = {}
        for j in jobs:
            if j.job.requested_time is None:
                listed = j.parts or j.allowed
                out[j.idx] = float(max(j.runtime[p] for p in listed))
        return out

    def _predicted(
        self, sim: Simulator, jobs: list[SimJob], learned: Mapping[int, float] | None = None
    ) -> dict[int, float]:
        """The runtimes the optimizer gets: :meth:`_runtimes`, and with ``learned`` the
        controller's predictions (``learned``: this tick's; default: the cached ones)."""
        out = self._runtimes(sim, jobs)
        if self.learned is not None:
            out.update(self._cached_runtimes if learned is None else learned)
        return out

    def _promote(self, now: int) -> None:
        """Make the ticks whose cache is written by ``now`` the one optsub reads."""
        while self._ticks and self._ticks[0][0] <= now:
            _, snap, runtimes, ratio = self._ticks.pop(0)
            self._cached_runtimes = runtimes
            self._cached_ratio = ratio
            if snap is not None:
                self._cache = snap
                self._since = [j for j in self._since if j.submit >= snap.taken_at]

    # -- decisions ----------------------------------------------------------------------
    def _problem(
        self,
        sim: Simulator,
        new: SimJob | None,
        learned: Mapping[int, float] | None = None,
        *,
        full: bool = False,
    ) -> Problem:
        """The live problem of this instant: ``new`` to rank (None: every pending job).

        With ``incremental`` (and not ``full``), the running jobs' profiles come
        from :class:`~slurmopt.sim.runbase.RunningBase` and the snapshot holds
        only the pending jobs (what else the build and the solvers read of the
        running ones is unused without QOS limits, as in the simulator).
        """
        cfg = self._with_ratio(sim, self._tick_ratio if new is None else self._cached_ratio)
        fast = self.incremental and not full and not cfg.limit_ratio
        snap = self._pending_snapshot(sim) if fast else self.snapshot(sim)
        cl = sim.cluster
        todo = [new] if new is not None else list(sim.pending.values())
        extra = [] if new is None else [self._job(sim, new, False)]
        runtimes = self._predicted(sim, [*sim.pending.values(), *todo], learned)
        allowed = {j.idx: [cl.partitions[p].name for p in j.allowed] for j in todo}
        return Problem.build(
            snap,
            cfg,
            jobs=extra or None,
            now=float(sim.now),
            runtimes=runtimes,
            allowed=allowed,
            memo=self._memo,
            base=self._running_profiles(sim) if fast else None,
        )

    def _static_nodes(self, sim: Simulator) -> tuple[Node, ...]:
        """The nodes as the problem's eligibility reads them (capacity, GPUs, availability:
        the same all replay long; their use comes from the profiles)."""
        if self._static is None:
            self._static = tuple(self._node(sim, i) for i in range(len(sim.cluster.names)))
        return self._static

    def _pending_snapshot(self, sim: Simulator) -> Snapshot:
        jobs = tuple(self._job(sim, j, False) for j in sim.pending.values())
        return Snapshot(
            taken_at=sim.now, nodes=self._static_nodes(sim), partitions=self._parts, jobs=jobs,
            source="sim",
        )  # fmt: skip

    def _running_profiles(self, sim: Simulator) -> Profiles:
        """``base_profiles`` of the running jobs, kept up to date (:mod:`slurmopt.sim.runbase`)."""
        cfg = self._config(sim)
        if self._base is None:
            self._base = RunningBase(self._static_nodes(sim))
        running = sim.running
        prof = self._base.update(
            float(sim.now),
            running,
            lambda j: self._job(sim, running[j], True),
            lambda n: self._node(sim, n),
            cfg,
        )
        if self.verify:
            want = base_profiles(self.snapshot(sim), cfg, float(sim.now), {})
            if want != prof:
                raise AssertionError(f"kept running profiles differ from a rebuild at {sim.now}")
        return prof

    def counters(self) -> dict[str, float]:
        """Decision counts for ``SimStats.extra``."""
        return {
            "submit_rankings": float(self.decisions),
            "controller_plans": float(self.plans),
            "shortcut_decisions": float(self.shortcuts),
            "ranking_failures": float(self.failures),
            "kept_schedule_rankings": float(self.reused),
            "kept_schedule_partial_rebuilds": float(self.partial),
        }

    def _obvious(self, sim: Simulator, job: SimJob) -> int | None:
        """The ranking's answer when it is known without building the problem.

        With no pending job, a partition where the job fits now at its best
        runtime gives the earliest end anyone can: the first such partition in
        the allowed order is what the ranking picks (ties go to that order).
        """
        if sim.pending:
            return None
        best = min(job.runtime[p] for p in job.allowed)
        for p in job.allowed:
            if job.runtime[p] == best and sim.fits_now(job, p):
                return p
        return None

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        """optsub's rule: the earliest predicted end among the allowed partitions."""
        if self._ahead is not None:
            self._mark_stale(sim)
        parts = self._decide(sim, job)
        if self._ahead is not None:
            self._extend(sim, job, parts)
        return parts

    def _decide(self, sim: Simulator, job: SimJob) -> tuple[int, ...]:
        if not self.at_submit or len(job.allowed) == 1:
            return job.allowed
        self._promote(sim.now)
        if self.shortcut and not (self.stale_cache or self.learned or self.gpu_speed):
            p = self._obvious(sim, job)
            if p is not None:
                self.shortcuts += 1
                return (p,)
        job.parts = ()
        cl = sim.cluster
        allowed = [cl.partitions[p].name for p in job.allowed]
        if self.stale_cache and self._cache is not None:
            problem = self._cached(sim, job, self._cache)
            ranking = rank_new_job(problem, job.idx, allowed)
        elif self._ahead is not None and not self._stale & self._comps_of(job):
            problem = self._light(sim, job, self._ahead)
            ranking = rank_new_job(problem, job.idx, allowed)
            self.reused += 1
            if self.verify:
                self._check_reuse(sim, job, allowed, ranking)
        else:
            problem = self._problem(sim, job)
            ranking = self._rank_and_keep(sim, problem, job, allowed)
        self.decisions += 1
        best = ranking.best
        if best is None:
            self.failures += 1
            return job.allowed
        if self.stale_cache:
            self._since.append(job)
        if self.choices is not None:
            self.choices[job.job.job_id] = best.partition
        # as optsub's argv: a job that must wait also lists the partitions where it
        # runs at least as fast (Slurm starts it in whichever frees first)
        also = also_acceptable(ranking.candidates, best, problem.now)
        return (cl.by_name[best.partition], *(cl.by_name[p] for p in also))

    # -- the queue's list schedule kept between submissions (issue 16) ---------------
    def _rank_and_keep(
        self, sim: Simulator, problem: Problem, job: SimJob, allowed: list[str]
    ) -> Ranking:
        """Rank on a fully built problem; keep (or bring up to date) its queue's list schedule.

        Kept when the new job is the problem's last job and no pending job was
        left out behind it (then the profiles after scheduling everything before
        it are the whole queue's, which the next submission sees ahead of it).
        Partition components never interact: only the stale ones are scheduled
        again, the others keep their schedule.
        """
        pos = len(problem.jobs) - 1
        if (
            not self.incremental
            or problem.config.limit_ratio  # running jobs' ends then move with now
            # a new job is last in queue order only when every partition has one tier
            or len({p.priority_tier for p in problem.partitions}) > 1
            or pos < 0
            or problem.jobs[pos].job_id != job.idx
            or problem.build_stats.get("beyond_window", 0)
        ):
            self._ahead = None
            return rank_new_job(problem, job.idx, allowed)
        base = problem.base
        if self._ahead is None:
            prof = base.copy()
            comps = set(range(len(problem.comp_nodes)))
            self._first, self._kept = {}, {}
            self._comp_of_part = list(problem.comp_of_part)
            self._comp_of_node = {n: c for c, ns in enumerate(problem.comp_nodes) for n in ns}
        else:
            prof, comps = self._ahead, set(self._stale)
            self.partial += 1
        for c in comps:
            got, self._first[c] = schedule_ahead(problem, pos, {c})
            for n in problem.comp_nodes[c]:  # lists of ``got`` are copies unless it is base
                fresh = got is not base
                prof.times[n] = got.times[n] if fresh else got.times[n][:]
                prof.cpu[n] = got.cpu[n] if fresh else got.cpu[n][:]
                prof.mem[n] = got.mem[n] if fresh else got.mem[n][:]
                prof.gpu[n] = got.gpu[n] if fresh else got.gpu[n][:]
        parts = problem.parts_of(problem.current_genes())
        for o in range(pos):
            c = problem.comp_of_part[parts[o]]
            if c in comps:
                self._kept[problem.jobs[o].job_id] = c
        self._ahead, self._stale = prof, set()
        self._seen, self._changes, self._moves = set(sim.running), sim.changes, sim.stats.moves
        ranking = rank_new_job(problem, job.idx, allowed, ahead=prof)
        if self.verify and comps != set(range(len(problem.comp_nodes))):
            self._check_reuse(sim, job, allowed, ranking)
        return ranking

    def _comps_of(self, job: SimJob) -> set[int]:
        return {self._comp_of_part[p] for p in job.allowed}

    def _mark_stale(self, sim: Simulator) -> None:
        """Mark the components whose kept schedule is no longer what a rebuild would give.

        Where a job started or ended, or a queued job left the queue (its
        component's schedule still holds it); where a queued job's predicted
        start has passed; where a running job is past its estimated end (its
        profile releases it a second after now, whatever now is). A kept
        component is what a rebuild would list-schedule: same running and queued
        jobs there, the same running profiles, and scheduling from a later origin
        finds the same starts and nodes (each the earliest feasible time, still
        after the origin). Moves drop everything.
        """
        if sim.stats.moves != self._moves:
            self._ahead = None
            return
        stale = self._stale
        of_node = self._comp_of_node
        if sim.changes != self._changes:
            cur = sim.running.keys()
            for j in (cur - self._seen) | (self._seen - cur):
                stale.update(of_node[n] for n in sim.jobs[j].nodes if n in of_node)
            gone = [j for j in self._kept if j not in sim.pending]
            for j in gone:
                stale.add(self._kept.pop(j))
            self._seen, self._changes = set(cur), sim.changes
        now = sim.now
        stale.update(c for c, first in self._first.items() if now > first)
        for late in sim.overdue():  # expected to end within a second of now, whatever now is
            stale.update(of_node[n] for n in late.nodes if n in of_node)
        if len(stale) == len(self._first):  # nothing left to reuse: rebuild from scratch
            self._ahead = None

    def _light(self, sim: Simulator, job: SimJob, base: Profiles) -> Problem:
        """The problem of one job (as :meth:`_problem` would state it) on the profiles ``base``."""
        cfg = self._config(sim)
        snap = Snapshot(
            taken_at=sim.now, nodes=self._static_nodes(sim), partitions=self._parts, jobs=(),
            source="sim",
        )  # fmt: skip
        allowed = None
        if not job.parts:
            allowed = {job.idx: [sim.cluster.partitions[p].name for p in job.allowed]}
        return Problem.build(
            snap,
            cfg,
            jobs=[self._job(sim, job, False)],
            now=float(sim.now),
            runtimes=self._runtimes(sim, [job]),
            allowed=allowed,
            base=base,
            memo=self._memo,
        )

    def _extend(self, sim: Simulator, job: SimJob, parts: tuple[int, ...]) -> None:
        """Append the new job, queued in ``parts``, to the kept list schedule.

        It is behind every pending job (Slurm's order: same tier and priority,
        submitted last), so a rebuild would schedule it last, where it is now,
        on the partition it lists first, with the runtime its list implies.
        In a stale component nothing is appended: its rebuild will schedule it.
        """
        assert self._ahead is not None
        job.parts = parts  # what the engine sets when place returns
        if all(self._comp_of_part[p] in self._stale for p in parts):
            return  # (cheap test first: it lands in one of these components)
        problem = self._light(sim, job, self._ahead)
        if not problem.jobs:
            return  # a rebuild leaves it out too (placeable nowhere it lists)
        opt = problem.options[0][problem.default_part(0)]
        c = self._comp_of_part[opt.part]
        if c in self._stale:
            return
        s, ns = place(self._ahead, opt, problem.t0[0])
        commit(self._ahead, opt, s, ns)
        self._first[c] = min(self._first.get(c, INF), s)
        self._kept[job.idx] = c

    def _check_reuse(
        self, sim: Simulator, job: SimJob, allowed: list[str], ranking: Ranking
    ) -> None:
        """``verify``: the ranking on the kept schedule equals a full rebuild's."""
        full = rank_new_job(self._problem(sim, job, full=True), job.idx, allowed)
        if full.candidates != ranking.candidates:
            raise AssertionError(
                f"job {job.idx} at {sim.now}: kept schedule ranks {ranking.candidates}, "
                f"a rebuild {full.candidates}"
            )

    def _cached(self, sim: Simulator, new: SimJob, cache: Snapshot) -> Problem:
        """The problem optsub builds from the controller's state cache (``stale_cache``).

        What the live optsub did before issue 16's live refresh: the snapshot the
        controller wrote at its last cycle (running jobs that ended since still
        hold their nodes until their predicted end; jobs that started since are
        still pending), plus the submissions made through optsub since then, as
        pending jobs in the partition chosen for them (the spool overlay).
        """
        overlay = []
        since = self._since if self.overlay_max is None else self._since[-self.overlay_max :]
        for j in since:
            if j.parts:
                job = self._job(sim, j, False)
                overlay.append(job)
        known = {j.job_id for j in cache.jobs}
        jobs = (*cache.jobs, *(j for j in overlay if j.job_id not in known))
        snap = Snapshot(
            taken_at=cache.taken_at,
            nodes=cache.nodes,
            partitions=cache.partitions,
            jobs=jobs,
            source="sim-cache",
        )
        extra = [self._job(sim, new, False)]
        todo = [new]
        runtimes = self._predicted(sim, [*sim.pending.values(), *todo])
        allowed = {new.idx: [sim.cluster.partitions[p].name for p in new.allowed]}
        return Problem.build(
            snap,
            self._config(sim),
            jobs=extra,
            now=float(sim.now),
            runtimes=runtimes,
            allowed=allowed,
        )

    def replan(self, sim: Simulator) -> dict[int, tuple[int, ...]]:
        """The controller: ``make_plan`` over every pending job; moves where it differs.

        With ``stale_cache`` it also writes the state cache optsub reads (the
        state at this tick), with ``learned`` the predictions (this tick's, which
        the re-plan uses too); optsub sees them ``cache_lag`` seconds later.
        """
        preds: dict[int, float] = {}
        if self.learned is not None:
            self._config(sim)
            preds = self.learned.at_tick(sim)
            self._tick_ratio = self.learned.ratios(
                sim.done, [p.name for p in sim.cluster.partitions]
            )
        if self.stale_cache or self.learned is not None:
            snap = self.snapshot(sim) if self.stale_cache else None
            self._ticks.append((sim.now + self.cache_lag, snap, preds, self._tick_ratio))
            self._promote(sim.now)
        if self.name == "optsub" or not self.replace_pending or not sim.pending:
            return {}
        problem = self._problem(sim, None, preds)
        plan = make_plan(problem, self.solver, seed=self.seed, budget=self.replan_budget)
        self.plans += 1
        cl = sim.cluster
        out: dict[int, tuple[int, ...]] = {}
        for pl in plan.placements:
            p = cl.by_name.get(pl.partition)
            job = sim.pending.get(pl.job_id)
            if p is not None and job is not None and p in job.allowed and job.parts != (p,):
                out[pl.job_id] = (p,)
        return out


class FinishedJob(NamedTuple):
    """A job the history database held before the replay started (``history``)."""

    info: JobInfo
    """As the predictor sees it, ``runtime_s`` in reference seconds."""
    partition: str
    runtime_s: float
    """Wall-clock runtime (for the limit shares)."""
    limit_s: float


class ControllerPredictions:
    """The runtimes the controller predicts at a tick (``[history] use_predictions``).

    What :meth:`slurmopt.history.controller_store.Store.tune` and
    :func:`slurmopt.history.learn.predict_runtimes` do, without the database:
    an :class:`~slurmopt.history.predict.Envelope` fed with every job finished
    by the tick, oldest end first, its runtime in reference units (x the
    configured speed of the GPU type it ran on); each pending and running job
    predicted from it (its time limit when no finished job is like it); a
    running job keeps its last recorded prediction while it has not outlived
    it, else is re-predicted (:func:`~slurmopt.history.predict.repredict`); the
    result is handed over in seconds at the job's speed: the GPU type it runs
    on, a pending job's slowest listed partition.
    """

    def __init__(
        self,
        speed: Callable[[str], float],
        history: Sequence[FinishedJob] = (),
        *,
        limit_ratio: bool = False,
    ) -> None:
        self.speed = speed
        """Configured speed of a GPU type (lower-case name)."""
        self.predictor = Envelope()
        self.history = list(history)
        """Jobs the history database held before the replay (oldest end first)."""
        self.limit_ratio = limit_ratio
        """Learn the shares of their limits finished jobs used (``[optimize] limit_ratio``)."""
        for f in self.history:
            self.predictor.observe(f.info)
        self._fed = 0
        self._last: dict[int, float] = {}
        """Job index -> last recorded prediction (reference seconds)."""

    def ratios(self, done: Sequence[SimJob], names: Sequence[str] = ()) -> dict[str, float]:
        """The shares as :func:`slurmopt.history.learn.limit_ratios` learns them: the 90th
        percentile of runtime / limit over the last 500 finished jobs (the history's, then
        ``done``; ``names``: the partitions by index), per partition with at least 20 of
        them and site-wide (``'*'``)."""
        if not self.limit_ratio:
            return {}
        from slurmopt.history.learn import (
            LIMIT_RATIO_JOBS,
            LIMIT_RATIO_MIN_JOBS,
            LIMIT_RATIO_QUANTILE,
        )

        rows = [(f.partition, f.runtime_s, f.limit_s) for f in self.history]
        ended = sorted(done, key=lambda j: (j.finish, j.idx))
        rows += [
            (names[j.part], float(j.finish - j.start), float(j.job.requested_time or 0))
            for j in ended
        ]
        per: dict[str, list[float]] = {}
        for part, rt, limit in rows[-LIMIT_RATIO_JOBS:]:
            if limit <= 0:
                continue
            r = min(1.0, max(0.001, rt / limit))
            per.setdefault("*", []).append(r)
            per.setdefault(part, []).append(r)
        out: dict[str, float] = {}
        for key, vals in per.items():
            if len(vals) >= LIMIT_RATIO_MIN_JOBS:
                vals.sort()
                i = min(len(vals) - 1, math.ceil(LIMIT_RATIO_QUANTILE * len(vals)) - 1)
                out[key] = round(vals[i], 4)
        return out

    @staticmethod
    def info(j: SimJob, runtime_s: float = 0.0) -> JobInfo:
        """What the predictor knows of a simulated job (as of its Slurm record)."""
        k, c, g, _ = j.shapes[j.part if j.part >= 0 else (j.parts or j.allowed)[0]]
        return JobInfo(
            user=j.job.user or "sim",
            runtime_s=runtime_s,
            time_limit_s=j.job.requested_time,
            name=j.job.name or None,
            cpus=float(math.ceil(k * c / 1000)),
            gpus=float(k * g),
        )

    def _ref_speed(self, sim: Simulator, j: SimJob) -> float:
        cl = sim.cluster
        if j.start >= 0:
            gtype = cl.gpu_type[j.nodes[0]] if j.nodes and j.shapes[j.part][2] else None
            return self.speed(gtype.lower()) if gtype else 1.0
        p0 = (j.parts or j.allowed)[0]
        if not j.shapes[p0][2]:
            return 1.0
        types = {
            cl.gpu_type[i]
            for p in j.parts or j.allowed
            for i in cl.partitions[p].nodes
            if cl.cap_gpu[i] and cl.gpu_type[i] and (not j.types or cl.gpu_type[i] in j.types)
        }
        return min((self.speed(t.lower()) for t in types if t), default=1.0)

    def at_tick(self, sim: Simulator) -> dict[int, float]:
        """Learn from the jobs that ended since the last tick; predict the active ones."""
        new = sorted(sim.done[self._fed :], key=lambda j: (j.finish, j.idx))
        self._fed = len(sim.done)
        cl = sim.cluster
        for j in new:
            rt = float(max(0, j.finish - j.start))
            gtype = cl.gpu_type[j.nodes[0]] if j.nodes and j.shapes[j.part][2] else None
            if gtype:
                rt *= self.speed(gtype.lower())
            self.predictor.observe(self.info(j, rt))
        out: dict[int, float] = {}
        for j in [*sim.running.values(), *sim.pending.values()]:
            est = self.predictor.predict(self.info(j))
            last = self._last.get(j.idx)
            if j.start >= 0:
                elapsed = float(sim.now - j.start)
                limit = j.job.requested_time
                if last is not None and last > elapsed:
                    est = Estimate(last, "kept")
                while est.runtime_s <= elapsed and (limit is None or est.runtime_s < limit):
                    est = repredict(est, elapsed, limit)
            if last is None or abs(last - est.runtime_s) >= 1.0:
                self._last[j.idx] = est.runtime_s
            out[j.idx] = est.runtime_s / self._ref_speed(sim, j)
        return out
