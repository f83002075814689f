"""Turn the guardrails' verdicts into changes in Slurm: intend, send, confirm.

1. :func:`decide`: one :class:`JobOutcome` per proposed change (and per
   ordering lever for the jobs that stay). When the cycle applies (enforce,
   no dry run, no kill switch) the accepted ones are ``intended``; the caller
   records them durably (the journal) before anything is sent.
2. :func:`send`: each intended change is one ``scontrol update``, so a job is
   either changed or untouched. A move Slurm accepted is ``sent``; a job that
   started or vanished is ``not-pending``; Slurm refusing is ``failed``;
   slurmctld not answering is ``unconfirmed`` (the request may still be acted
   on when slurmctld resumes) and every later change is ``skipped`` (not sent).
   ``progress`` is called after each change so the journal follows.
3. :func:`confirm`: one read of the moved jobs: a ``sent`` or ``unconfirmed``
   move whose job is in the target partition is ``applied``; a ``sent`` move
   whose job is elsewhere is ``failed``; anything not read back stays
   ``unconfirmed`` for the next cycle to reconcile (:func:`reconcile`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.guardrails import Verdict
from slurmopt.controller.levers import Queued, order_changes
from slurmopt.controller.report import UNSETTLED, JobOutcome
from slurmopt.errors import JobNotPending, SlurmoptError, SlurmUnavailable, SlurmUnsupported
from slurmopt.model import Job, SetNice
from slurmopt.slurm.backend import Backend

log = logging.getLogger(__name__)


def applying(cfg: ControllerConfig, dry_run: bool, kill_switch: bool) -> bool:
    """Whether accepted changes are sent to Slurm in this cycle."""
    return cfg.mode == "enforce" and not dry_run and not kill_switch


def _not_applied(cfg: ControllerConfig, dry_run: bool) -> str:
    if dry_run and cfg.mode == "enforce":
        return "dry-run"
    return "advised" if cfg.mode == "advise" else "observed"


def decide(
    verdicts: Iterable[Verdict], cfg: ControllerConfig, *, dry_run: bool, kill_switch: bool
) -> list[JobOutcome]:
    """Every proposed change and ordering lever, with what will happen to it."""
    verdicts = list(verdicts)
    apply = applying(cfg, dry_run, kill_switch)
    out: list[JobOutcome] = []
    for v in verdicts:
        p = v.proposal
        if not p.is_change:
            continue
        outcome = "rejected"
        if v.accepted:
            outcome = "intended" if apply else _not_applied(cfg, dry_run)
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
                reason=v.reason,
                outcome=outcome,
            )
        )
    return _levers(verdicts, out, cfg, dry_run=dry_run, kill_switch=kill_switch)


def _levers(
    verdicts: list[Verdict],
    outcomes: list[JobOutcome],
    cfg: ControllerConfig,
    *,
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
    changed = {c.job_id for c in changes}
    out = [o for o in outcomes if o.accepted or o.job_id not in changed]
    for c in changes:
        p = by_job[c.job_id].proposal
        kind, value = ("nice", c.nice) if isinstance(c, SetNice) else ("priority", c.priority)
        reason = c.reason
        if c.job_id in rest:
            reason += f"; not moved: {rest[c.job_id].reason}"
        if applying(cfg, dry_run, kill_switch):
            outcome = "intended"
        else:
            outcome = _not_applied(cfg, dry_run)
            if kill_switch:
                reason += f"; kill switch {cfg.kill_switch} is present: no changes"
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


def send(
    backend: Backend,
    outcomes: list[JobOutcome],
    jobs: Mapping[int, Job],
    *,
    progress: Callable[[], None] = lambda: None,
) -> None:
    """Send every ``intended`` change, in order, updating ``outcomes`` in place."""
    unreachable: str | None = None
    for o in outcomes:
        if o.outcome != "intended":
            continue
        if unreachable is not None:
            o.outcome, o.reason = "skipped", f"not sent: slurmctld unreachable ({unreachable})"
        elif o.change == "move":
            _send_move(backend, o, jobs[o.job_id])
        else:
            _send_lever(backend, o)
        if o.outcome == "unconfirmed":
            unreachable = o.reason
        progress()


def _send_move(backend: Backend, o: JobOutcome, job: Job) -> None:
    gpu_type = o.gpu_type if job.request.gpu_type is not None else None
    try:
        backend.move(job.job_id, o.to_partition, gpu_type=gpu_type, current_request=job.request)
    except JobNotPending as exc:
        o.outcome, o.reason = "not-pending", str(exc)
    except SlurmUnsupported as exc:
        o.outcome, o.reason = "unsupported", str(exc)
    except SlurmUnavailable as exc:
        log.error("slurmctld did not answer while moving job %s: %s", job.job_id, exc)
        o.outcome, o.reason = "unconfirmed", f"sent, no answer: {exc}"
    except SlurmoptError as exc:
        log.error("move of job %s failed: %s", job.job_id, exc)
        o.outcome, o.reason = "failed", str(exc)
    else:
        o.outcome = "sent"


def _send_lever(backend: Backend, o: JobOutcome) -> None:
    assert o.value is not None
    try:
        if o.change == "nice":
            backend.set_nice(o.job_id, o.value)
        else:
            backend.set_priority(o.job_id, o.value)
    except JobNotPending as exc:
        o.outcome, o.reason = "not-pending", str(exc)
    except SlurmUnavailable as exc:
        o.outcome, o.reason = "unconfirmed", f"sent, no answer: {exc}"
    except SlurmoptError as exc:
        o.outcome, o.reason = "failed", str(exc)
    else:
        o.outcome = "applied"


def _where(job: Job) -> str:
    return ",".join(job.partitions) or "(no partition)"


def confirm(backend: Backend, outcomes: list[JobOutcome]) -> None:
    """Read the moved jobs back once and settle ``sent`` / ``unconfirmed`` moves in place."""
    todo = [o for o in outcomes if o.change == "move" and o.outcome in ("sent", "unconfirmed")]
    if not todo:
        return
    try:
        found = {j.job_id: j for j in backend.jobs(job_ids=[o.job_id for o in todo])}
    except SlurmoptError as exc:
        log.error("cannot read back %d moved job(s): %s", len(todo), exc)
        for o in todo:
            if o.outcome == "sent":
                o.outcome, o.reason = "unconfirmed", f"{o.reason}; not read back: {exc}"
        return
    for o in todo:
        job = found.get(o.job_id)
        if job is None:
            if o.outcome == "sent":
                o.outcome = "unconfirmed"
                o.reason += "; Slurm accepted the move, but no longer shows the job"
        elif set(job.partitions) == {o.to_partition}:
            if o.outcome == "unconfirmed":
                o.reason += "; confirmed by reading the job back"
            o.outcome = "applied"
            log.info("moved job %s %s -> %s", o.job_id, ",".join(o.from_partitions), o.to_partition)
        elif o.outcome == "sent":
            o.outcome = "failed"
            o.reason = f"Slurm accepted the move, but the job is in {_where(job)}"


def reconcile(outcomes: list[JobOutcome], jobs: Mapping[int, Job], *, started_at: float) -> int:
    """Settle the unsettled changes of an earlier cycle from Slurm's state now (in place).

    A move found done is ``applied`` (by the controller: it is in the target
    and nobody else asked for it); found where it was, ``skipped``; found
    elsewhere, ``moved-elsewhere`` (by someone else); gone, ``gone``. An
    unsettled lever is ``unconfirmed`` (levers are recomputed every cycle).
    Returns how many it settled.
    """
    when = f"cycle of {int(started_at)}"
    n = 0
    for o in outcomes:
        if o.outcome not in UNSETTLED:
            continue
        n += 1
        job = jobs.get(o.job_id)
        if o.change != "move":
            o.outcome, o.reason = "unconfirmed", f"{o.reason}; not confirmed ({when})"
        elif job is None:
            o.outcome = "gone"
            o.reason += f"; the job left Slurm before the {when} was confirmed"
        elif set(job.partitions) == {o.to_partition}:
            o.outcome = "applied"
            o.reason += f"; found moved by the next cycle (moved by slurmopt controller, {when})"
        elif set(job.partitions) == set(o.from_partitions):
            o.outcome = "skipped"
            o.reason += f"; found not moved by the next cycle (still in {_where(job)})"
        else:
            o.outcome = "moved-elsewhere"
            o.reason += f"; moved by someone else: in {_where(job)}, not {o.to_partition}"
    return n
