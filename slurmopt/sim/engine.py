"""The event-driven trace replay: a Slurm-like FIFO + EASY-backfill scheduler.

Events are job submissions, job ends and controller ticks, kept in one heap and
processed in time order; at each instant ends come first, then submissions
(the policy picks each new job's partitions), then a controller tick (the
policy may re-place pending jobs), then a scheduling pass.

The scheduling pass follows Slurm's main + backfill scheduler in its EASY form:

* pending jobs in priority order: FIFO with age (every job ages at the same
  rate, so the order is submit time, then trace order);
* a job starts at once if one of its partitions has room on some nodes and the
  start does not delay a reservation; with several partitions it starts in the
  first (in the job's order) where it fits now, else it gets a reservation
  where its estimated start is earliest (Slurm's multi-partition rule);
* the first job of a partition that cannot start gets a reservation: the
  earliest time enough nodes are free, by the estimated ends of running jobs
  (time limit, or the exact runtime where the trace has none), and the nodes
  it will use then; one reservation per partition (EASY);
* later jobs backfill when they fit now and either end (by their estimate)
  before the reservation starts or use only resources the reserved job will
  not need on its reserved nodes.

Nodes shared by partitions are one pool; a reservation does not count on
nodes another partition's reservation of the same pass will use (so, with
shared nodes, a reservation made later for a job of higher priority can still
push a reserved job back, as Slurm's per-cycle backfill plan can). The scan of
the queue is bounded per pass (``window``, Slurm's ``bf_max_job_test``). A
pass triggered only by submissions tries only the new jobs: nothing was
freed, so older jobs still cannot start and reservations stay valid.
Deterministic: no randomness here; policies get their own seeded generator.
"""

from __future__ import annotations

import heapq
import logging
import time
from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from slurmopt.sim.cluster import SimCluster
from slurmopt.sim.metrics import JobOutcome
from slurmopt.sim.workload import Shape, SimJob

log = logging.getLogger(__name__)

_END, _SUBMIT, _TICK, _RETRY = 0, 1, 2, 3

_FitKey = tuple[int, Shape, tuple[str, ...]]
"""(partition, shape, GPU types): what decides whether a job fits, for one pass's memos."""


class Policy(Protocol):
    """Chooses partitions for jobs. ``replan`` may return new choices for pending jobs."""

    name: str

    def place(self, sim: Simulator, job: SimJob) -> tuple[int, ...]: ...

    def replan(self, sim: Simulator) -> dict[int, tuple[int, ...]]: ...


@dataclass(slots=True)
class _Resv:
    """A reservation for one blocked job: when it starts and what it leaves per node."""

    job: int
    part: int
    shadow: int
    extra: dict[int, list[int]]
    """node -> [cpu, gpu, mem] still free at ``shadow`` after the reserved job starts."""


@dataclass(slots=True)
class SimStats:
    """Counters of one replay."""

    events: int = 0
    passes: int = 0
    full_passes: int = 0
    backfilled: int = 0
    reservations: int = 0
    replans: int = 0
    truncated: int = 0
    """Passes that stopped at ``window`` jobs (continued by a retry pass ``retry_s`` later)."""
    skipped_ticks: int = 0
    """Controller ticks skipped because nothing happened since the last re-plan."""
    moves: int = 0
    wall_s: float = 0.0
    policy_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class Simulator:
    """One replay of ``jobs`` on ``cluster`` under ``policy``."""

    def __init__(  # noqa: PLR0913  keyword-only options of one replay (simulate passes them)
        self,
        cluster: SimCluster,
        jobs: list[SimJob],
        policy: Policy,
        *,
        controller_interval: int | None = None,
        first_tick: int | None = None,
        launch_s: int = 0,
        window: int = 1000,
        retry_s: int = 30,
        progress: Callable[[int, int], None] | None = None,
        check: bool = False,
    ) -> None:
        self.cluster = cluster
        self.jobs = jobs
        self.policy = policy
        self.interval = controller_interval
        self.first_tick = controller_interval if first_tick is None else max(0, first_tick)
        self.launch_s = max(0, launch_s)
        """Seconds every job holds its nodes beyond its runtime (launch, prolog, epilog)."""
        """Seconds from the first submission to the first controller tick (default: the
        interval; 0: a controller already running when the first job arrives, as cron)."""
        self.window = window
        self.retry_s = max(1, retry_s)
        self._cursor = -1
        """Index of the last job a truncated pass tried (-1: the last pass saw every job)."""
        self._retry_at = -1
        self.progress = progress
        self.check = check
        self.now = 0
        self.pending: dict[int, SimJob] = {}
        self.running: dict[int, SimJob] = {}
        self.done: list[SimJob] = []
        self.resv: list[_Resv] = []
        self.node_resv: dict[int, list[_Resv]] = {}
        self.stats = SimStats()
        self.timeline: list[tuple[int, int, int]] = []
        """(time, CPUs in use (milli), GPUs in use) after each pass."""
        self.used_cpu = 0
        self.used_gpu = 0
        self._min_shadow = 1 << 62
        self._by_end: list[tuple[int, int]] = []
        """Running jobs as (estimated end, index), sorted."""
        self._changed = True
        self.first_shadow: dict[int, int] = {}
        """Job index -> start time of its first reservation (for checks)."""
        n_parts = len(cluster.partitions)
        self.queued = [0] * n_parts
        """Per partition: demand of pending jobs listing it, in its primary unit."""
        self.queued_work = [0.0] * n_parts
        """Per partition: demand x estimated runtime of pending jobs listing it."""
        self._heap: list[tuple[int, int, int, int]] = []
        self._seq = 0
        self.changes = 0
        """Starts, ends and moves so far: unchanged means the same running and pending sets."""

    # -- event loop -------------------------------------------------------------------
    def _push(self, t: int, kind: int, idx: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, kind, self._seq, idx))

    def run(self) -> list[JobOutcome]:
        """Replay every job to its end; return one outcome per job in job order."""
        t0 = time.perf_counter()
        self._seed_events()
        total = len(self.jobs)
        steps = 0
        while self._heap:
            now = self._heap[0][0]
            self.now = now
            freed, new, tick, retry = self._pop_instant(now)
            if freed or new:
                self._changed = True
            if tick and self._tick(now, total):
                freed = True
            self._run_passes(freed=freed, retry=retry, new=new)
            self._close_instant(now)
            steps += 1
            if self.progress is not None and not steps % 2048:
                self.progress(len(self.done), total)
        self.stats.wall_s = time.perf_counter() - t0
        if self.pending:
            raise AssertionError(f"{len(self.pending)} jobs never started")
        if self.progress is not None:
            self.progress(len(self.done), total)
        return [self._outcome(j) for j in self.jobs]

    def _seed_events(self) -> None:
        """Queue every submission and the first controller tick."""
        for j in self.jobs:
            self._push(j.submit, _SUBMIT, j.idx)
        if self.interval and self.jobs:
            self._push(self.jobs[0].submit + (self.first_tick or 0), _TICK, 0)

    def _pop_instant(self, now: int) -> tuple[bool, list[SimJob], bool, bool]:
        """Process every event at ``now``: ends, then submissions (placed by the policy).

        Returns (a job ended, the new jobs, a controller tick is due, a retry pass is due).
        """
        heap = self._heap
        freed = False
        new: list[SimJob] = []
        tick = False
        retry = False
        while heap and heap[0][0] == now:
            _, kind, _, idx = heapq.heappop(heap)
            self.stats.events += 1
            if kind == _END:
                self._end(self.jobs[idx])
                freed = True
            elif kind == _SUBMIT:
                new.append(self._submit(self.jobs[idx]))
            elif kind == _RETRY:
                retry = self._retry_at == now
            else:
                tick = True
        return freed, new, tick, retry

    def _submit(self, job: SimJob) -> SimJob:
        """The policy picks the new job's partitions; the job joins the pending queue."""
        tp = time.perf_counter()
        job.parts = self.policy.place(self, job)
        self.stats.policy_s += time.perf_counter() - tp
        self.pending[job.idx] = job
        self._queue(job, +1)
        return job

    def _tick(self, now: int, total: int) -> bool:
        """A controller tick: re-plan unless nothing happened since the last re-plan.

        Schedules the next tick while jobs remain; True when the policy returned changes.
        """
        changed = False
        if self._changed:
            self._changed = False
            changed = self._replan()
        else:
            self.stats.skipped_ticks += 1
        if self.pending or len(self.done) + len(self.running) < total:
            self._push(now + (self.interval or 1), _TICK, 0)
        return changed

    def _replan(self) -> bool:
        """Ask the policy for new partition choices and move the pending jobs it names."""
        tp = time.perf_counter()
        changes = self.policy.replan(self)
        self.stats.policy_s += time.perf_counter() - tp
        self.stats.replans += 1
        for idx, parts in changes.items():
            moved = self.pending.get(idx)
            if moved is not None and parts and parts != moved.parts:
                self._queue(moved, -1)
                moved.parts = parts
                self._queue(moved, +1)
                self.stats.moves += 1
                self.changes += 1
        return bool(changes)

    def _run_passes(self, *, freed: bool, retry: bool, new: list[SimJob]) -> None:
        """The scheduling passes of one instant.

        A full pass when resources were freed (or jobs moved); otherwise the
        continuation of a truncated pass when its retry is due, then the new jobs.
        """
        if freed:
            self._schedule(list(self.pending.values()), full=True)
            return
        if retry and self._cursor >= 0:
            cursor, self._cursor = self._cursor, -1
            self._schedule([j for j in self.pending.values() if j.idx > cursor], full=False)
        if new:
            self._schedule(new, full=False)

    def _close_instant(self, now: int) -> None:
        """After the passes: queue a retry for a truncated pass, check, record the timeline."""
        if self._cursor >= 0 and self._retry_at <= now:
            self._retry_at = now + self.retry_s
            self._push(self._retry_at, _RETRY, 0)
        if self.check:
            self._check_invariants()
        self.timeline.append((now, self.used_cpu, self.used_gpu))

    def _outcome(self, j: SimJob) -> JobOutcome:
        shape = j.shapes[j.part]
        return JobOutcome(
            job_id=j.job.job_id,
            submit=float(j.submit),
            start=float(j.start),
            finish=float(j.finish),
            cpus=shape[0] * shape[1] / 1000.0,
            gpus=float(shape[0] * shape[2]),
            gpus_asked=j.job.gpus,
            partition=self.cluster.partitions[j.part].name,
            job_class=j.job_type or "",
            best_runtime=float(j.best_runtime),
        )

    # -- starting and ending -------------------------------------------------------------
    def _start(self, job: SimJob, p: int, nodes: list[int]) -> None:
        k, c, g, m = job.shapes[p]
        self.cluster.take(nodes, c, g, m)
        self.used_cpu += k * c
        self.used_gpu += k * g
        job.start = self.now
        job.part = p
        job.nodes = tuple(nodes)
        job.finish = self.now + job.runtime[p] + self.launch_s
        job.est_end = self.now + job.est[p]
        del self.pending[job.idx]
        self._queue(job, -1)
        self.running[job.idx] = job
        self.changes += 1
        insort(self._by_end, (job.est_end, job.idx))
        self._push(job.finish, _END, job.idx)

    # -- public queries for policies ------------------------------------------------------
    def fits_now(self, job: SimJob, p: int) -> bool:
        """True when ``job`` could start on ``p`` now without delaying a reservation."""
        return bool(self._fit(job, p, job.shapes[p], self.now + job.est[p]))

    def earliest_start(self, job: SimJob, p: int) -> int | None:
        """Earliest time ``job`` fits on ``p`` by the running jobs' estimated ends (None: never)."""
        got = self._shadow(job, p)
        return None if got is None else got[0]

    def overdue(self) -> list[SimJob]:
        """Running jobs at or past their estimated end (a runtime above the time limit)."""
        out = []
        for end, idx in self._by_end:
            if end > self.now:
                break
            out.append(self.jobs[idx])
        return out

    def demand(self, job: SimJob, p: int) -> int:
        """The job's demand on ``p`` in the partition's primary unit (GPUs, else milli-CPUs)."""
        k, c, g, _ = job.shapes[p]
        return k * g if self.cluster.partitions[p].has_gpus else k * c

    def _queue(self, job: SimJob, sign: int) -> None:
        for p in job.parts:
            d = self.demand(job, p)
            self.queued[p] += sign * d
            self.queued_work[p] += sign * d * job.est[p]

    def _end(self, job: SimJob) -> None:
        k, c, g, m = job.shapes[job.part]
        self.cluster.give(list(job.nodes), c, g, m)
        self.used_cpu -= k * c
        self.used_gpu -= k * g
        del self.running[job.idx]
        self.changes += 1
        by_end = self._by_end
        del by_end[bisect_left(by_end, (job.est_end, job.idx))]
        self.done.append(job)

    # -- the scheduling pass ---------------------------------------------------------------
    def _schedule(self, queue: list[SimJob], *, full: bool) -> None:
        """One pass over ``queue`` in priority order: start what fits, reserve for the blocked."""
        self._begin_pass(full=full)
        reserved = {r.part for r in self.resv}
        nofit: set[_FitKey] = set()
        # Within a pass resources and reservation leftovers only shrink, and a
        # later estimated end meets more reservations: a shape that reservations
        # blocked for an end stays blocked for that end and any later one.
        blocked: dict[_FitKey, int] = {}
        tested = 0
        last = -1
        for job in queue:
            if job.start >= 0 or job.idx not in self.pending:
                continue
            tested += 1
            if tested > self.window:
                # bf_continue: the next cycle goes on after the last job tried
                self._cursor = last if self._cursor < 0 else min(self._cursor, last)
                self.stats.truncated += 1
                break
            last = job.idx
            if self._try_start(job, nofit, blocked):
                continue
            free_parts = [p for p in job.parts if p not in reserved]
            if free_parts:
                r = self._reserve(job, free_parts)
                if r is not None:
                    reserved.add(r.part)

    def _begin_pass(self, *, full: bool) -> None:
        """Count the pass; a full pass drops every reservation and the truncation cursor."""
        self.stats.passes += 1
        if full:
            self.stats.full_passes += 1
            self.resv = []
            self.node_resv = {}
            self._cursor = -1
        self._min_shadow = min((r.shadow for r in self.resv), default=1 << 62)

    def _try_start(self, job: SimJob, nofit: set[_FitKey], blocked: dict[_FitKey, int]) -> bool:
        """Start ``job`` now in the first of its partitions where it fits; True if it started.

        ``nofit`` and ``blocked`` remember, for this pass, the shapes that do not
        fit at all and those that reservations block for an estimated end.
        """
        parts = self.cluster.partitions
        for p in job.parts:
            shape = job.shapes[p]
            k, c, g, _ = shape
            part = parts[p]
            if part.free_gpus < k * g or part.free_cpus < k * c:
                continue
            key = (p, shape, job.types)
            if key in nofit:
                continue
            end = self.now + job.est[p]
            if end >= blocked.get(key, 1 << 62):
                continue
            nodes = self._fit(job, p, shape, end)
            if nodes is None:
                nofit.add(key)
                continue
            if not nodes:
                blocked[key] = end
                continue
            if self.resv:
                self.stats.backfilled += 1
            self._take_resv(nodes, shape, end)
            self._start(job, p, nodes)
            return True
        return False

    def _fit(self, job: SimJob, p: int, shape: Shape, end: int) -> list[int] | None:
        """First-fit nodes of ``p`` for ``shape`` now, honouring reservations.

        Returns the nodes; ``[]`` when only reservations stand in the way; None
        when the free resources do not fit the shape at all.
        """
        k, c, g, m = shape
        cl = self.cluster
        fc, fg, fm = cl.free_cpu, cl.free_gpu, cl.free_mem
        types = job.types if g > 0 else ()
        node_resv = self.node_resv
        check_resv = bool(node_resv) and end > self._min_shadow
        part = cl.partitions[p]
        chosen: list[int] = []
        raw = 0
        for i in part.gpu_free_nodes if g > 0 else part.cpu_free_nodes:
            if fg[i] < g or fc[i] < c or fm[i] < m:
                continue
            if types and cl.gpu_type[i] not in types:
                continue
            raw += 1
            if check_resv:
                rs = node_resv.get(i)
                if rs is not None:
                    bad = False
                    for r in rs:
                        if end > r.shadow:
                            e = r.extra[i]
                            if e[0] < c or e[1] < g or e[2] < m:
                                bad = True
                                break
                    if bad:
                        continue
            chosen.append(i)
            if len(chosen) == k:
                return chosen
        return None if raw < k else []

    def _take_resv(self, nodes: list[int], shape: Shape, end: int) -> None:
        """A job that outlives a reservation's start eats into what it leaves free."""
        _, c, g, m = shape
        for i in nodes:
            for r in self.node_resv.get(i, ()):
                if end > r.shadow:
                    e = r.extra[i]
                    e[0] -= c
                    e[1] -= g
                    e[2] -= m

    def _reserve(self, job: SimJob, parts: list[int]) -> _Resv | None:
        """Reserve the earliest start among ``parts`` for a blocked job (EASY head)."""
        best: tuple[int, int, dict[int, list[int]]] | None = None
        for p in parts:
            got = self._shadow(job, p)
            if got is not None and (best is None or got[0] < best[0]):
                best = (got[0], p, got[1])
        if best is None:
            return None
        r = _Resv(job=job.idx, part=best[1], shadow=best[0], extra=best[2])
        self.resv.append(r)
        for i in r.extra:
            self.node_resv.setdefault(i, []).append(r)
        self._min_shadow = min(self._min_shadow, r.shadow)
        self.stats.reservations += 1
        self.first_shadow.setdefault(job.idx, r.shadow)
        return r

    def _shadow(self, job: SimJob, p: int) -> tuple[int, dict[int, list[int]]] | None:
        """Earliest time ``job`` fits in ``p`` by estimated ends, and the leftovers then."""
        k, c, g, m = job.shapes[p]
        avail, fits = self._free_now(job, p)
        shadow = self.now
        if len(fits) < k:
            later = self._free_by_ends(job, p, avail, fits)
            if later is None:
                return None
            shadow = later
        chosen = fits[:k]
        extra = {i: [avail[i][0] - c, avail[i][1] - g, avail[i][2] - m] for i in chosen}
        return shadow, extra

    def _free_now(self, job: SimJob, p: int) -> tuple[dict[int, list[int]], list[int]]:
        """Free [cpu, gpu, mem] now on the nodes of ``p`` no reservation uses; the ones that fit."""
        _, c, g, m = job.shapes[p]
        cl = self.cluster
        part = cl.partitions[p]
        types = job.types if g > 0 else ()
        avail: dict[int, list[int]] = {}
        fits: list[int] = []
        fc, fg, fm = cl.free_cpu, cl.free_gpu, cl.free_mem
        gtype = cl.gpu_type
        taken = self.node_resv  # nodes another reservation will use: not counted on
        for i in part.gpu_free_nodes if g > 0 else part.cpu_free_nodes:
            if i in taken:
                continue
            a0, a1, a2 = fc[i], fg[i], fm[i]
            avail[i] = [a0, a1, a2]
            if a0 >= c and a1 >= g and a2 >= m and not (types and gtype[i] not in types):
                fits.append(i)
        return avail, fits

    def _free_by_ends(
        self, job: SimJob, p: int, avail: dict[int, list[int]], fits: list[int]
    ) -> int | None:
        """Release running jobs by estimated end until ``job`` fits in ``p``; when it does.

        Updates ``avail`` and ``fits`` in place; None when it never fits.
        """
        k, c, g, m = job.shapes[p]
        cl = self.cluster
        node_set = cl.partitions[p].node_set
        types = job.types if g > 0 else ()
        fc, fg, fm = cl.free_cpu, cl.free_gpu, cl.free_mem
        gtype = cl.gpu_type
        taken = self.node_resv
        jobs = self.jobs
        for _, ridx in self._by_end:
            rj = jobs[ridx]
            if node_set.isdisjoint(rj.nodes):
                continue
            _, rc, rg, rm = rj.shapes[rj.part]
            for i in rj.nodes:
                if i not in node_set or i in taken:
                    continue
                got = avail.get(i)
                if got is None:
                    a = avail[i] = [fc[i], fg[i], fm[i]]
                else:
                    a = got
                was = a[0] >= c and a[1] >= g and a[2] >= m
                a[0] += rc
                a[1] += rg
                a[2] += rm
                if not was and a[0] >= c and a[1] >= g and a[2] >= m:
                    if types and gtype[i] not in types:
                        continue
                    fits.append(i)
            if len(fits) >= k:
                return max(self.now, rj.est_end)
        return None

    # -- checks ------------------------------------------------------------------------------
    def _check_invariants(self) -> None:
        cl = self.cluster
        for i in range(len(cl.names)):
            if not (0 <= cl.free_cpu[i] <= cl.cap_cpu[i]):
                raise AssertionError(f"node {cl.names[i]} CPUs out of range")
            if not (0 <= cl.free_gpu[i] <= cl.cap_gpu[i]):
                raise AssertionError(f"node {cl.names[i]} GPUs out of range")
            if not (0 <= cl.free_mem[i] <= cl.cap_mem[i]):
                raise AssertionError(f"node {cl.names[i]} memory out of range")
