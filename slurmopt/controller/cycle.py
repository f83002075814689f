"""One controller cycle: read, reconcile, solve, guard, record the intent, apply, confirm, record.

Order of a cycle (each step's failure is handled as noted; docs/controller.md
lists every fault with its exit code and the test that shows it):

1. take the cycle lock (another run holds it: :class:`AlreadyRunning`, nothing done);
2. read the whole snapshot (any failed read: the cycle is skipped, nothing done);
3. reconcile: an earlier cycle's journal (changes whose effect was unknown)
   is settled from this snapshot and recorded, then removed (the database
   unavailable: the cycle is skipped, the journal kept);
4. ingest optsub's spool and observe the snapshot into the history database
   (the database unavailable: the cycle is skipped; records wait in the spool);
5. build the placement Problem over the *managed* pending jobs and solve it;
   the baseline is Slurm's own rule (earliest start over the listed partitions);
6. judge every proposed change with the guardrails;
7. enforce mode only: record the intended changes in the journal (cannot:
   nothing is applied), send them (:mod:`.apply`), read the moved jobs back;
8. write the state cache for optsub and the routing file for the Lua plugin;
9. record the run and every verdict in the database, retried within a budget;
   then remove the journal, or keep it while a change is unconfirmed or the
   database could not record (the next cycle's step 3).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from slurmopt.controller import apply
from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.guardrails import Proposal, Verdict, judge
from slurmopt.controller.journal import Journal
from slurmopt.controller.lock import CycleLock
from slurmopt.controller.report import UNSETTLED, CycleReport, JobOutcome
from slurmopt.errors import SlurmoptError
from slurmopt.model import PLUGIN_ALLOWED_TAG, Plan, Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.backend import Backend
from slurmopt.trust import Claim, Refusal, allowed_set, claim_refusal

if TYPE_CHECKING:
    from slurmopt.history.controller_store import Store

log = logging.getLogger(__name__)

ALLOWED_TAG = PLUGIN_ALLOWED_TAG


__all__ = ["ALLOWED_TAG", "CycleReport", "JobOutcome", "managed_jobs", "run_cycle"]


def managed_jobs(
    snap: Snapshot,
    cfg: ControllerConfig,
    optsub_jobs: Mapping[int, Sequence[Claim]],
    *,
    channels: dict[int, str] | None = None,
    refusals: list[Refusal] | None = None,
) -> dict[int, tuple[tuple[str, ...], bool]]:
    """Pending, unheld jobs that opted in -> (allowed set, GPU type pinned).

    A job opts in only through a channel its owner controls (docs/security.md):
    an optsub record from a spool file its owner owned (the newest such record
    gives the allowed set), the Lua plugin (``slurmopt:allowed=`` in
    ``admin_comment``, which users cannot set), or a site rule (``manage_all``,
    ``opt_in_accounts``, ``opt_in_comment_tag``: allowed set = the partitions
    the job lists). The allowed set always contains the job's current
    partitions. ``channels`` receives each managed job's channel, ``refusals``
    every record that claimed a job it may not speak for.
    """
    out: dict[int, tuple[tuple[str, ...], bool]] = {}
    chan: dict[int, str] = {} if channels is None else channels
    for job in snap.jobs:
        if not job.pending or job.held:
            continue
        good: Claim | None = None
        for c in sorted(optsub_jobs.get(job.job_id, ()), key=lambda c: c.at):
            why = claim_refusal(
                c, job_user=job.user, submit_time=job.submit_time, cluster=snap.cluster_name
            )
            if why is None:
                good = c
            elif refusals is not None:
                refusals.append(Refusal("controller", c.owner, f"record for job {job.job_id}", why))
        if good is not None:
            out[job.job_id] = (allowed_set(good.allowed, job.partitions), good.pinned)
            chan[job.job_id] = f"optsub:{good.owner}"
            continue
        tag = job.plugin_allowed
        if tag:
            out[job.job_id] = (allowed_set(tag, job.partitions), True)
            chan[job.job_id] = "plugin"
            continue
        rule = (
            "site:all"
            if cfg.manage_all
            else "site:account"
            if job.account is not None and job.account in cfg.opt_in_accounts
            else "site:comment"
            if cfg.opt_in_comment_tag and job.comment and cfg.opt_in_comment_tag in job.comment
            else ""
        )
        if rule:
            out[job.job_id] = (job.partitions, True)
            chan[job.job_id] = rule
    return out


def run_cycle(  # noqa: PLR0913  the cycle's collaborators, keyword-only: every caller (CLI, tests) sets its own store, paths, clock and journal, and an options object would only repeat this list
    backend: Backend,
    cfg: ControllerConfig,
    opt_cfg: OptimizeConfig,
    *,
    store: Store | None,
    dry_run: bool = False,
    lock_path: Path,
    cache_path: Path | None,
    routing_path: Path | None,
    clock: Callable[[], float] = time.time,
    journal: Journal | None = None,
) -> CycleReport:
    """One cycle (see the module docstring).

    ``journal``: where intents are recorded (default: beside ``lock_path``).

    Raises:
        AlreadyRunning: another controller holds the lock.
        SlurmUnavailable, SlurmCommandError, SlurmParseError: the read failed (nothing done).
        DatabaseError: the history database failed before any change (nothing done).
        JournalError: the intent could not be recorded (nothing applied).
    """
    t0 = time.perf_counter()
    report = CycleReport(started_at=clock(), mode=cfg.mode, dry_run=dry_run, seed=cfg.seed)
    journal = journal or Journal.beside(lock_path)
    with CycleLock(lock_path):
        snap = _read_state(backend, report, t0)  # step 2
        cluster = snap.cluster_name
        report.reconciled = _reconcile(journal, snap, store)  # step 3
        inputs = _history_inputs(store, snap, opt_cfg)  # step 4
        managed, channels = _select_managed(snap, cfg, inputs.optsub_jobs, store, report)
        report.kill_switch = Path(cfg.kill_switch).exists()
        journalled = False
        if managed:
            verdicts = _solve_and_judge(backend, snap, report, cfg, inputs, managed)  # 5, 6
            t2 = time.perf_counter()
            report.jobs = apply.decide(
                verdicts, cfg, dry_run=dry_run, kill_switch=report.kill_switch
            )
            for j in report.jobs:
                j.managed_by = channels.get(j.job_id, "")
            journalled = _record_intent_and_apply(backend, snap, report, journal)  # step 7
            report.apply_s = time.perf_counter() - t2
            _summarize(report)
        report.wall_s = time.perf_counter() - t0
        if journalled:
            _follow(journal, report, cluster)  # with the wall time
        _write_outputs(snap, inputs.opt_cfg, cache_path, routing_path, inputs.runtimes)  # 8
        _record(report, cluster, store, journal)  # step 9
    return report


def _read_state(backend: Backend, report: CycleReport, t0: float) -> Snapshot:
    """Read the whole snapshot (any failure raises: nothing done) and count what it holds."""
    snap = backend.snapshot()
    report.read_s = time.perf_counter() - t0
    report.jobs_seen = len(snap.jobs)
    report.pending = len(snap.pending)
    return snap


@dataclass(frozen=True)
class _HistoryInputs:
    """What the history database gives a cycle (all empty without one)."""

    opt_cfg: OptimizeConfig
    optsub_jobs: Mapping[int, Sequence[Claim]] = field(default_factory=dict)
    moves: Mapping[int, int] = field(default_factory=dict)
    runtimes: dict[int, float] = field(default_factory=dict)


def _history_inputs(store: Store | None, snap: Snapshot, opt_cfg: OptimizeConfig) -> _HistoryInputs:
    """Ingest optsub's spool, observe ``snap``, and read the claims, moves and tuning.

    Raises:
        DatabaseError: the database is unavailable (nothing done; records wait in the spool).
    """
    if store is None:
        return _HistoryInputs(opt_cfg)
    cluster = snap.cluster_name
    store.ingest_and_observe(snap)
    optsub_jobs = store.managed(cluster, (j.job_id for j in snap.pending))
    moves = store.moves_so_far(cluster)
    tuned, runtimes = store.tune(snap, opt_cfg)
    return _HistoryInputs(tuned, optsub_jobs, moves, runtimes)


def _select_managed(
    snap: Snapshot,
    cfg: ControllerConfig,
    optsub_jobs: Mapping[int, Sequence[Claim]],
    store: Store | None,
    report: CycleReport,
) -> tuple[dict[int, tuple[tuple[str, ...], bool]], dict[int, str]]:
    """The managed jobs and each one's channel; refused claims are reported and recorded."""
    channels: dict[int, str] = {}
    refusals: list[Refusal] = []
    managed = managed_jobs(snap, cfg, optsub_jobs, channels=channels, refusals=refusals)
    report.managed = len(managed)
    report.refusals = [r.to_dict() for r in refusals]
    if store is not None and refusals:
        store.record_refusals(refusals, int(report.started_at))
    return managed, channels


def _solve_and_judge(
    backend: Backend,
    snap: Snapshot,
    report: CycleReport,
    cfg: ControllerConfig,
    inputs: _HistoryInputs,
    managed: Mapping[int, tuple[tuple[str, ...], bool]],
) -> list[Verdict]:
    """Solve the placement of the managed jobs and judge every proposed change."""
    t1 = time.perf_counter()
    proposals, plan, before = _plan(
        backend,
        snap,
        cfg=cfg,
        opt_cfg=inputs.opt_cfg,
        managed=managed,
        moves=inputs.moves,
        runtimes=inputs.runtimes,
    )
    report.solve_s = time.perf_counter() - t1
    report.solver = plan.solver
    report.objective_after = plan.objective
    report.objective_before = before
    report.proposals = sum(p.is_change for p in proposals)
    return judge(proposals, cfg, now=snap.taken_at, kill_switch=report.kill_switch)


def _record_intent_and_apply(
    backend: Backend, snap: Snapshot, report: CycleReport, journal: Journal
) -> bool:
    """Journal the intended changes, send them and read them back; whether any were.

    Raises:
        JournalError: the intent could not be recorded (nothing applied).
    """
    if not any(j.outcome == "intended" for j in report.jobs):
        return False
    cluster = snap.cluster_name
    journal.write(report, cluster)  # JournalError: nothing applied
    by_id = {j.job_id: j for j in snap.jobs}
    apply.send(
        backend,
        report.jobs,
        by_id,
        progress=lambda: _follow(journal, report, cluster),
    )
    apply.confirm(backend, report.jobs)
    _summarize(report)
    _follow(journal, report, cluster)
    return True


def _summarize(report: CycleReport) -> None:
    accepted = [j for j in report.jobs if j.accepted]
    report.accepted = len(accepted)
    report.total_gain_s = sum(j.gain_s for j in accepted)
    report.applied = sum(j.outcome == "applied" for j in report.jobs)
    report.failed = sum(j.outcome == "failed" for j in report.jobs)
    report.unconfirmed = sum(j.outcome == "unconfirmed" for j in report.jobs)
    lost = [j for j in report.jobs if j.outcome in ("skipped", "unconfirmed")]
    if lost:
        report.error = (
            f"slurmctld stopped answering during apply: {report.unconfirmed} change(s) "
            f"unconfirmed, {len(lost) - report.unconfirmed} not sent"
        )


def _follow(journal: Journal, report: CycleReport, cluster: str) -> None:
    """Rewrite the journal as changes are sent (best effort: the intent is already there)."""
    try:
        journal.write(report, cluster)
    except SlurmoptError as exc:
        log.warning("%s (the next cycle reconciles from the recorded intent)", exc)


def _record(report: CycleReport, cluster: str, store: Store | None, journal: Journal) -> None:
    """Record the cycle; keep the journal while it is unrecorded or a change is unsettled."""
    unsettled = any(j.outcome in UNSETTLED for j in report.jobs)
    if store is not None:
        from slurmopt.history.db import DatabaseError

        try:
            store.record(report, cluster)
        except DatabaseError as exc:
            report.record_error = str(exc)
            if journal.path.exists():
                return  # the journal holds the record: the next cycle writes it
            try:
                journal.write(report, cluster)
            except SlurmoptError as err:
                log.error("cycle not recorded: %s; %s", exc, err)
            return
    if not unsettled:
        journal.clear()


def _reconcile(journal: Journal, snap: Snapshot, store: Store | None) -> int:
    """Settle and record an earlier cycle's journal from ``snap``; returns how many changes.

    Raises:
        DatabaseError: it could not be recorded (the journal is kept, nothing else done).
    """
    loaded = journal.load()
    if loaded is None:
        return 0
    old, cluster = loaded
    if cluster != snap.cluster_name:
        aside = journal.set_aside(f"cluster-{cluster or 'unnamed'}")
        log.warning(
            "journal %s is for cluster %r, not %r: moved to %s, not reconciled",
            journal.path,
            cluster,
            snap.cluster_name,
            aside,
        )
        return 0
    n = apply.reconcile(old.jobs, {j.job_id: j for j in snap.jobs}, started_at=old.started_at)
    old.applied = sum(j.outcome == "applied" for j in old.jobs)
    old.unconfirmed = sum(j.outcome == "unconfirmed" for j in old.jobs)
    if n:
        log.warning("reconciled %d change(s) of the cycle of %d from Slurm", n, int(old.started_at))
    if store is not None:
        store.record(old, cluster, replace=True)
    journal.clear()
    return n


def _plan(
    backend: Backend,
    snap: Snapshot,
    *,
    cfg: ControllerConfig,
    opt_cfg: OptimizeConfig,
    managed: Mapping[int, tuple[tuple[str, ...], bool]],
    moves: Mapping[int, int],
    runtimes: Mapping[int, float],
) -> tuple[list[Proposal], Plan, float]:
    from slurmopt.optimize import Budget, greedy, make_plan
    from slurmopt.optimize.problem import Problem

    jobs = [j for j in snap.jobs if j.job_id in managed]
    pinned = [jid for jid, (_, pin) in managed.items() if pin]
    rewritable = [jid for jid, (_, pin) in managed.items() if not pin]
    if not backend_can_retype(backend):
        pinned, rewritable = list(managed), []
    problem = Problem.build(
        snap,
        opt_cfg,
        jobs=jobs,
        runtimes=runtimes,
        allowed={jid: allowed for jid, (allowed, _) in managed.items()},
        rewritable=rewritable,
        pinned=pinned,
    )
    # Baseline: what Slurm does with the jobs as they are, each starting wherever
    # it starts first among the partitions it lists now (the same Problem, with
    # each job's allowed set narrowed to its current partitions).
    as_is = Problem.build(
        snap,
        opt_cfg,
        jobs=jobs,
        runtimes=runtimes,
        allowed={j.job_id: j.partitions for j in jobs},
        pinned=managed,
    )
    baseline = as_is.plan_from(greedy.earliest_start(as_is), solver="earliest-start")
    plan = make_plan(problem, cfg.policy, seed=cfg.seed, budget=Budget(seconds=cfg.budget_s))
    by_id = {j.job_id: j for j in jobs}
    proposals = []
    for target in plan.placements:
        job = by_id.get(target.job_id)
        current = baseline.placement(target.job_id)
        if job is None or current is None:
            continue
        proposals.append(
            Proposal(
                job=job,
                allowed=tuple(managed[job.job_id][0]),
                current_start=current.predicted_start,
                current_end=current.predicted_end,
                target=target.partition,
                target_gpu_type=target.gpu_type,
                target_start=target.predicted_start,
                target_end=target.predicted_end,
                moves_so_far=moves.get(job.job_id, 0),
                current=current.partition,
            )
        )
    return proposals, plan, baseline.objective


def backend_can_retype(backend: Backend) -> bool:
    """Whether a pending job's GPU type can be changed (not on Slurm 22.05; SLURM_NOTES.md)."""
    try:
        v = backend.version()
    except SlurmoptError:
        return False
    return (v.major, v.minor) >= (23, 2)


DIGEST_MIN_PENDING = 200
"""A queue longer than this goes into the state cache as a digest (see below)."""


def write_state_cache(
    snap: Snapshot, opt_cfg: OptimizeConfig, path: Path | str, runtimes: Mapping[int, float]
) -> None:
    """Write optsub's state cache.

    A short queue (at most :data:`DIGEST_MIN_PENDING` pending jobs) is written as it
    is: optsub corrects it live (jobs started or ended since) and schedules it
    itself, in milliseconds. A longer one is written as the queue digest
    (:func:`slurmopt.optimize.ranking.queue_digest`) with the snapshot's
    non-pending jobs only, so that optsub neither reads nor schedules it on its
    submit path; the price is that the queue is seen as the controller scheduled
    it at its last cycle. If the digest cannot be computed, the whole snapshot is
    written.

    Raises:
        OSError: the cache cannot be written.
    """
    import dataclasses

    from slurmopt import statecache
    from slurmopt.optimize.ranking import queue_digest

    if sum(1 for j in snap.jobs if j.pending) <= DIGEST_MIN_PENDING:
        statecache.write_cache(snap, path, runtimes=runtimes, limit_ratio=opt_cfg.limit_ratio)
        return
    try:
        digest = queue_digest(snap, opt_cfg, runtimes)
    except Exception as exc:  # a cache without digest still serves optsub
        log.warning("queue digest not written to the state cache: %s", exc)
        statecache.write_cache(snap, path, runtimes=runtimes, limit_ratio=opt_cfg.limit_ratio)
        return
    slim = dataclasses.replace(snap, jobs=tuple(j for j in snap.jobs if not j.pending))
    statecache.write_cache(
        slim, path, runtimes=runtimes, queue=digest, limit_ratio=opt_cfg.limit_ratio
    )


def _write_outputs(
    snap: Snapshot,
    opt_cfg: OptimizeConfig,
    cache: Path | None,
    routing_path: Path | None,
    runtimes: Mapping[int, float],
) -> None:
    from slurmopt.controller import routing
    from slurmopt.fsutil import write_atomic

    if cache is not None:
        try:
            write_state_cache(snap, opt_cfg, cache, runtimes)
        except OSError as exc:
            log.warning("cannot write the state cache %s: %s", cache, exc)
    if routing_path is not None:
        try:
            routes = routing.advise(snap, opt_cfg)
            text = routing.render(routes, int(snap.taken_at), routing.partition_gpus(snap))
            write_atomic(routing_path, text)
        except (OSError, ValueError) as exc:
            log.warning("cannot write the routing file %s: %s", routing_path, exc)


def env_path(value: str, default: Path) -> Path:
    """A configured path, or ``default`` when the value is empty."""
    return Path(os.path.expanduser(value)) if value else default
