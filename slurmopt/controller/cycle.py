"""One controller cycle: read, solve, guard, apply, record.

Order of a cycle (each step's failure is handled as noted):

1. take the cycle lock (another run holds it: :class:`AlreadyRunning`, nothing done);
2. read the whole snapshot (any failed read: the cycle is skipped, nothing done);
3. ingest optsub's spool and observe the snapshot into the history database
   (the database unreachable: the cycle is skipped; records wait in the spool);
4. build the placement Problem over the *managed* pending jobs and solve it;
   the baseline is Slurm's own rule (earliest start over the listed partitions);
5. judge every proposed change with the guardrails;
6. apply the accepted changes (enforce mode only, kill switch absent): each
   move is one ``scontrol update``, so a job is either moved or untouched; a
   job that started or vanished meanwhile is recorded as such, not an error;
   slurmctld lost mid-apply stops the remaining moves, each recorded;
7. record the run and every verdict; write the state cache for optsub and
   the routing file for the Lua plugin.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.guardrails import Proposal, Verdict, judge
from slurmopt.controller.levers import Queued, order_changes
from slurmopt.controller.lock import CycleLock
from slurmopt.errors import JobNotPending, SlurmoptError, SlurmUnavailable, SlurmUnsupported
from slurmopt.model import PLUGIN_ALLOWED_TAG, Job, Plan, SetNice, SetPriority, Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.backend import Backend
from slurmopt.trust import Claim, Refusal, allowed_set, claim_refusal

log = logging.getLogger(__name__)

ALLOWED_TAG = PLUGIN_ALLOWED_TAG


@dataclass
class JobOutcome:
    """What the cycle decided and did for one managed job."""

    job_id: int
    from_partitions: tuple[str, ...]
    to_partition: str
    gpu_type: str | None
    current_start: float
    current_end: float
    target_start: float
    target_end: float
    gain_s: float
    accepted: bool
    reason: str
    outcome: str
    """applied, advised, observed, dry-run, not-pending, unsupported, failed, skipped, rejected."""
    change: str = "move"
    """move, nice or priority (the value is in ``value``)."""
    value: int | None = None
    managed_by: str = ""
    """The channel that made the job managed (``optsub:<owner>``, ``plugin``, ``site:...``)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, from_partitions=list(self.from_partitions))


@dataclass
class CycleReport:
    """The cycle's report (``slurmopt controller --json``)."""

    started_at: float
    mode: str
    dry_run: bool
    kill_switch: bool = False
    wall_s: float = 0.0
    read_s: float = 0.0
    solve_s: float = 0.0
    apply_s: float = 0.0
    jobs_seen: int = 0
    pending: int = 0
    managed: int = 0
    proposals: int = 0
    accepted: int = 0
    applied: int = 0
    failed: int = 0
    total_gain_s: float = 0.0
    """Sum of expected gains of accepted changes (what enforce does or would do)."""
    solver: str = ""
    seed: int = 0
    objective_before: float | None = None
    objective_after: float | None = None
    error: str | None = None
    refusals: list[dict[str, str]] = field(default_factory=list)
    """optsub records not used for a trust reason (docs/security.md)."""
    jobs: list[JobOutcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "jobs"}
        d["jobs"] = [j.to_dict() for j in self.jobs]
        return d


class Store:
    """What the cycle needs from the history database (see :mod:`slurmopt.history`)."""

    def __init__(
        self, url: str, spool: Path, *, predictions: bool = False, learned_speeds: bool = False
    ) -> None:
        from slurmopt.history import db

        self.engine = db.make_engine(url)
        db.require_schema(self.engine)
        self.spool = spool
        self.predictions = predictions
        self.learned_speeds = learned_speeds

    def tune(self, snap: Snapshot, cfg: OptimizeConfig) -> tuple[OptimizeConfig, dict[int, float]]:
        """Learned speed factors and predicted runtimes, where enabled in ``[history]``.

        Predictions are learned in reference units (runtime x speed of the GPU
        type a job ran on) and handed to the optimizer as it expects them: a
        pending job's at the slowest speed among the partitions it lists, a
        running job's at the speed of the GPU type it runs on.
        """
        import dataclasses

        from slurmopt.history import db
        from slurmopt.history.learn import learned_gpu_speed, predict_runtimes, trained_predictor

        runtimes: dict[int, float] = {}
        with db.transaction(self.engine) as s:
            if self.learned_speeds:
                cfg = dataclasses.replace(cfg, gpu_speed=learned_gpu_speed(s, cfg.gpu_speed))
            if self.predictions:
                pred = trained_predictor(s, speeds=cfg.gpu_speed)
                est = predict_runtimes(
                    s, snap.jobs, pred, now=int(snap.taken_at), cluster=snap.cluster_name
                )
                by_id = {j.job_id: j for j in snap.jobs}
                for job_id, e in est.items():
                    runtimes[job_id] = e.runtime_s / _reference_speed(by_id[job_id], snap, cfg)
        return cfg, runtimes

    def ingest_and_observe(self, snap: Snapshot) -> None:
        from slurmopt.history import db
        from slurmopt.history.ingest import observe
        from slurmopt.history.spool import ingest_spool

        ingest_spool(self.engine, self.spool)
        with db.transaction(self.engine) as s:
            observe(s, snap)

    def managed(self, cluster: str, job_ids: Iterable[int] = ()) -> dict[int, list[Claim]]:
        """job id -> the attested optsub records about it (only for ``job_ids``, if given).

        Records ingested before the trust model (no attested owner) are not claims.
        """
        from sqlalchemy import select

        from slurmopt.history import db
        from slurmopt.history.orm import SpoolRecord

        out: dict[int, list[Claim]] = {}
        ids = sorted(set(job_ids))
        chunks = [ids[i : i + 500] for i in range(0, len(ids), 500)] if ids else [None]
        with db.transaction(self.engine) as s:
            for chunk in chunks:
                q = select(
                    SpoolRecord.job_id, SpoolRecord.owner, SpoolRecord.at, SpoolRecord.data
                ).where(SpoolRecord.job_id.is_not(None), SpoolRecord.owner.is_not(None))
                if chunk is not None:
                    q = q.where(SpoolRecord.job_id.in_(chunk))
                for job_id, owner, at, data in s.execute(q):
                    c = claim_from_record(int(job_id), str(owner), int(at), data)
                    if c is not None:
                        out.setdefault(c.job_id, []).append(c)
        return out

    def record_refusals(self, refusals: list[Refusal], at: int) -> None:
        """Add the controller's refusals to the audit trail (each distinct one once)."""
        from sqlalchemy import select

        from slurmopt.history import db
        from slurmopt.history.orm import TrustRefusal

        with db.transaction(self.engine) as s:
            for r in refusals:
                seen = s.execute(
                    select(TrustRefusal.id).where(
                        TrustRefusal.component == r.component,
                        TrustRefusal.what == r.what[:256],
                        TrustRefusal.why == r.why[:256],
                    )
                ).first()
                if seen is None:
                    r.log()
                    s.add(
                        TrustRefusal(
                            at=at,
                            component=r.component,
                            who=r.who[:64],
                            what=r.what[:256],
                            why=r.why[:256],
                        )
                    )

    def moves_so_far(self, cluster: str) -> dict[int, int]:
        from sqlalchemy import func, select

        from slurmopt.history import db
        from slurmopt.history.orm import Decision

        with db.transaction(self.engine) as s:
            q = (
                select(Decision.job_id, func.count())
                .where(
                    Decision.source == "controller",
                    Decision.applied.is_(True),
                    Decision.cluster == cluster,
                )
                .group_by(Decision.job_id)
            )
            return {int(j): int(n) for j, n in s.execute(q)}

    def record(self, report: CycleReport, cluster: str) -> None:
        from slurmopt.history import db
        from slurmopt.history.ingest import record_decision, record_run

        started = int(report.started_at)
        with db.transaction(self.engine) as s:
            run_id = record_run(
                s,
                started_at=started,
                mode=report.mode,
                cluster=cluster,
                finished_at=int(report.started_at + report.wall_s),
                wall_s=report.wall_s,
                jobs_seen=report.jobs_seen,
                moves_applied=report.applied,
                error=report.error,
            )
            for j in report.jobs:
                record_decision(
                    s,
                    job_id=j.job_id,
                    decided_at=started,
                    run_id=run_id,
                    cluster=cluster,
                    source="controller",
                    mode=report.mode,
                    solver=report.solver,
                    seed=report.seed,
                    from_partitions=",".join(j.from_partitions),
                    to_partition=j.to_partition,
                    gpu_type=j.gpu_type,
                    predicted_start=j.target_start,
                    predicted_end=j.target_end,
                    predicted_runtime=j.target_end - j.target_start,
                    gain_s=j.gain_s,
                    applied=j.outcome == "applied",
                    outcome=j.outcome,
                    reason=j.reason,
                    managed_by=j.managed_by or None,
                    candidates=[
                        {
                            "partition": ",".join(j.from_partitions),
                            "start": j.current_start,
                            "end": j.current_end,
                        },
                        {"partition": j.to_partition, "start": j.target_start, "end": j.target_end},
                    ],
                )


def _reference_speed(job: Job, snap: Snapshot, cfg: OptimizeConfig) -> float:
    """The speed a job's wall runtime is measured at (see :meth:`Store.tune`)."""
    if not job.request.wants_gpus:
        return 1.0
    if job.running and job.gpus_alloc:
        types = [t for t, n in job.gpus_alloc.items() if n > 0]
    else:
        gpu_nodes = {n.name: n for n in snap.nodes if n.gpu_total}
        types = [
            t
            for p in snap.partitions
            if p.name in job.partitions
            for name in p.nodes
            if name in gpu_nodes
            for t, c in gpu_nodes[name].gpus.items()
            if c > 0 and (job.request.gpu_type in (None, t))
        ]
    return min((cfg.speed_of_gpu(t) for t in types), default=1.0)


def claim_from_record(job_id: int, owner: str, at: int, data: Any) -> Claim | None:
    """An optsub record (as stored by ingestion) as a :class:`Claim`; None if it says nothing."""
    if not isinstance(data, dict):
        return None
    inner = data.get("data") if isinstance(data.get("data"), dict) else data
    assert isinstance(inner, dict)
    allowed = inner.get("allowed") or inner.get("allowed_partitions") or ()
    if isinstance(allowed, str):
        allowed = allowed.split(",")
    if not isinstance(allowed, list | tuple):
        return None
    return Claim(
        job_id=job_id,
        owner=owner,
        allowed=tuple(str(p) for p in allowed if p),
        pinned=inner.get("pinned") is not False,
        at=at,
        cluster=str(data.get("cluster") or inner.get("cluster") or ""),
    )


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


def run_cycle(
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
) -> CycleReport:
    """One cycle (see the module docstring).

    Raises:
        AlreadyRunning: another controller holds the lock.
        SlurmUnavailable, SlurmCommandError, SlurmParseError: the read failed (nothing done).
        SlurmoptError: the history database failed before any change (nothing done).
    """
    t0 = time.perf_counter()
    report = CycleReport(started_at=clock(), mode=cfg.mode, dry_run=dry_run, seed=cfg.seed)
    with CycleLock(lock_path):
        snap = backend.snapshot()
        report.read_s = time.perf_counter() - t0
        report.jobs_seen = len(snap.jobs)
        report.pending = len(snap.pending)
        cluster = snap.cluster_name
        optsub_jobs: Mapping[int, Sequence[Claim]] = {}
        moves: Mapping[int, int] = {}
        runtimes: dict[int, float] = {}
        if store is not None:
            store.ingest_and_observe(snap)
            optsub_jobs = store.managed(cluster, (j.job_id for j in snap.pending))
            moves = store.moves_so_far(cluster)
            opt_cfg, runtimes = store.tune(snap, opt_cfg)
        channels: dict[int, str] = {}
        refusals: list[Refusal] = []
        managed = managed_jobs(snap, cfg, optsub_jobs, channels=channels, refusals=refusals)
        report.managed = len(managed)
        report.refusals = [r.to_dict() for r in refusals]
        if store is not None and refusals:
            store.record_refusals(refusals, int(report.started_at))
        report.kill_switch = Path(cfg.kill_switch).exists()
        if managed:
            t1 = time.perf_counter()
            proposals, plan, before = _plan(
                backend,
                snap,
                cfg=cfg,
                opt_cfg=opt_cfg,
                managed=managed,
                moves=moves,
                runtimes=runtimes,
            )
            report.solve_s = time.perf_counter() - t1
            report.solver = plan.solver
            report.objective_after = plan.objective
            report.objective_before = before
            report.proposals = sum(p.is_change for p in proposals)
            verdicts = judge(proposals, cfg, now=snap.taken_at, kill_switch=report.kill_switch)
            t2 = time.perf_counter()
            report.jobs = _apply(backend, verdicts, cfg, dry_run, report.kill_switch)
            report.jobs = _apply_levers(
                backend, verdicts, report.jobs, cfg, dry_run, report.kill_switch
            )
            report.apply_s = time.perf_counter() - t2
            for j in report.jobs:
                j.managed_by = channels.get(j.job_id, "")
            accepted = [j for j in report.jobs if j.accepted]
            report.accepted = len(accepted)
            report.total_gain_s = sum(j.gain_s for j in accepted)
            report.applied = sum(j.outcome == "applied" for j in report.jobs)
            report.failed = sum(j.outcome == "failed" for j in report.jobs)
            lost = [j for j in report.jobs if j.outcome == "skipped"]
            if lost:
                report.error = f"slurmctld became unreachable: {len(lost)} change(s) not applied"
        report.wall_s = time.perf_counter() - t0
        if store is not None:
            store.record(report, cluster)
        _write_outputs(snap, opt_cfg, cache_path, routing_path, runtimes)
    return report


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


def _apply(
    backend: Backend,
    verdicts: Iterable[Verdict],
    cfg: ControllerConfig,
    dry_run: bool,
    kill_switch: bool,
) -> list[JobOutcome]:
    out: list[JobOutcome] = []
    unreachable = False
    for v in verdicts:
        p = v.proposal
        if not p.is_change:
            continue
        outcome, reason = "rejected", v.reason
        if v.accepted:
            if cfg.mode != "enforce" or dry_run or kill_switch:
                outcome = "advised" if cfg.mode == "advise" else "observed"
                if dry_run and cfg.mode == "enforce":
                    outcome = "dry-run"
            elif unreachable:
                outcome, reason = "skipped", "not applied: slurmctld unreachable"
            else:
                outcome, reason = _apply_one(backend, p, v.reason)
                unreachable = outcome == "skipped"
        out.append(
            JobOutcome(
                job_id=p.job.job_id,
                from_partitions=p.job.partitions,
                to_partition=p.target,
                gpu_type=p.target_gpu_type,
                current_start=p.current_start,
                current_end=p.current_end,
                target_start=p.target_start,
                target_end=p.target_end,
                gain_s=p.gain_s,
                accepted=v.accepted,
                reason=reason,
                outcome=outcome,
            )
        )
    return out


def _apply_levers(
    backend: Backend,
    verdicts: Iterable[Verdict],
    outcomes: list[JobOutcome],
    cfg: ControllerConfig,
    dry_run: bool,
    kill_switch: bool,
) -> list[JobOutcome]:
    """Nice / priority changes for the managed jobs that stay (see :mod:`.levers`).

    A job with a rejected move keeps one record: the lever, with the rejection appended.
    """
    moved = {o.job_id for o in outcomes if o.accepted}
    staying: list[Queued] = []
    by_job: dict[int, Verdict] = {}
    for v in verdicts:
        p = v.proposal
        if p.job.job_id in moved:
            continue
        by_job[p.job.job_id] = v
        staying.append(Queued(p.job, p.current or p.target, p.current_end - p.current_start))
    changes = order_changes(staying, cfg)
    if not changes:
        return outcomes
    rest = {o.job_id: o for o in outcomes if not o.accepted}
    out = [o for o in outcomes if o.accepted or o.job_id not in {c.job_id for c in changes}]
    for c in changes:
        p = by_job[c.job_id].proposal
        kind, value = ("nice", c.nice) if isinstance(c, SetNice) else ("priority", c.priority)
        reason = c.reason
        if c.job_id in rest:
            reason += f"; not moved: {rest[c.job_id].reason}"
        if cfg.mode != "enforce" or dry_run or kill_switch:
            outcome = "advised" if cfg.mode == "advise" else "observed"
            if dry_run and cfg.mode == "enforce":
                outcome = "dry-run"
            if kill_switch:
                reason += f"; kill switch {cfg.kill_switch} is present: no changes"
        else:
            outcome, err = _apply_lever(backend, c)
            reason = err or reason
        out.append(
            JobOutcome(
                job_id=c.job_id,
                from_partitions=p.job.partitions,
                to_partition=p.current or p.target,
                gpu_type=None,
                current_start=p.current_start,
                current_end=p.current_end,
                target_start=p.current_start,
                target_end=p.current_end,
                gain_s=0.0,
                accepted=True,
                reason=reason,
                outcome=outcome,
                change=kind,
                value=value,
            )
        )
    return out


def _apply_lever(backend: Backend, c: SetNice | SetPriority) -> tuple[str, str | None]:
    try:
        if isinstance(c, SetNice):
            backend.set_nice(c.job_id, c.nice)
        else:
            backend.set_priority(c.job_id, c.priority)
    except JobNotPending as exc:
        return "not-pending", str(exc)
    except SlurmUnavailable as exc:
        return "skipped", f"not applied: {exc}"
    except SlurmoptError as exc:
        return "failed", str(exc)
    return "applied", None


def _apply_one(backend: Backend, p: Proposal, reason: str) -> tuple[str, str]:
    job: Job = p.job
    gpu_type = p.target_gpu_type if job.request.gpu_type is not None else None
    try:
        backend.move(job.job_id, p.target, gpu_type=gpu_type, current_request=job.request)
    except JobNotPending as exc:
        return "not-pending", str(exc)
    except SlurmUnsupported as exc:
        return "unsupported", str(exc)
    except SlurmUnavailable as exc:
        log.error("slurmctld unreachable while applying: %s", exc)
        return "skipped", f"not applied: {exc}"
    except SlurmoptError as exc:
        log.error("move of job %s failed: %s", job.job_id, exc)
        return "failed", str(exc)
    log.info("moved job %s %s -> %s (%s)", job.job_id, ",".join(job.partitions), p.target, reason)
    return "applied", reason


def _write_outputs(
    snap: Snapshot,
    opt_cfg: OptimizeConfig,
    cache: Path | None,
    routing_path: Path | None,
    runtimes: Mapping[int, float],
) -> None:
    from slurmopt import statecache
    from slurmopt.controller import routing
    from slurmopt.fsutil import write_atomic

    if cache is not None:
        try:
            statecache.write_cache(snap, cache, runtimes=runtimes)
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
