"""``slurmopt why JOBID``: a job's story in plain words, from the history database
(and the live queue when Slurm answers)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from slurmopt.history.orm import Decision, JobEvent, JobRow, Prediction
from slurmopt.model import Job


def _when(t: float | None) -> str:
    if t is None:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _dur(s: float | None) -> str:
    if s is None:
        return "unknown"
    s = int(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


@dataclass
class Explanation:
    """What ``why`` found, as text lines and as data."""

    job_id: int
    found: bool
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def explain(session: Session, job_id: int, live: Job | None = None) -> Explanation:
    """Explain job ``job_id``: state, placement and why, candidates, predictions, changes."""
    row = session.execute(
        select(JobRow).where(JobRow.job_id == job_id).order_by(JobRow.submit_time.desc()).limit(1)
    ).scalar_one_or_none()
    decs = list(
        session.execute(
            select(Decision).where(Decision.job_id == job_id).order_by(Decision.decided_at)
        ).scalars()
    )
    preds = list(
        session.execute(
            select(Prediction).where(Prediction.job_id == job_id).order_by(Prediction.made_at)
        ).scalars()
    )
    ex = Explanation(job_id, found=row is not None or live is not None or bool(decs))
    if not ex.found:
        ex.lines.append(f"Job {job_id}: slurmopt has no record of it and Slurm does not list it.")
        return ex
    _state(ex, row, live, _allowed(row, decs))
    _decisions(ex, decs, managed=bool(row and row.managed))
    _predictions(ex, preds)
    if row is not None:
        events = session.execute(
            select(JobEvent).where(JobEvent.job_pk == row.id).order_by(JobEvent.at, JobEvent.id)
        ).scalars()
        ev = [(e.at, e.kind, e.state, e.partition, e.detail) for e in events]
        if ev:
            ex.lines.append("History:")
            for at, kind, _, part, detail in ev:
                extra = f" ({detail})" if detail else ""
                ex.lines.append(f"  {_when(at)}  {kind}" + (f" -> {part}" if part else "") + extra)
        ex.data["events"] = [
            {"at": a, "kind": k, "state": s, "partition": p, "detail": d} for a, k, s, p, d in ev
        ]
    return ex


def _allowed(row: JobRow | None, decs: list[Decision]) -> str:
    """The partitions the job's owner allowed: optsub's recorded set, else what Slurm saw.

    The jobs table keeps the partitions the job was submitted to (or the plugin's
    allowed set); for an optsub job that is only the partition optsub chose.
    """
    own = next((d.from_partitions for d in decs if d.source == "optsub" and d.from_partitions), "")
    return own or (row.allowed_partitions if row is not None else "")


def _state(ex: Explanation, row: JobRow | None, live: Job | None, allowed: str) -> None:
    name = live.name if live else (row.name if row else "")
    user = live.user if live else (row.user if row else "")
    ex.lines.append(f"Job {ex.job_id} ({name}) of user {user}")
    if live is not None:
        state = live.state.value
        ex.lines.append(
            f"  state now: {state}" + (f", Slurm's reason: {live.reason}" if live.reason else "")
        )
        if live.pending:
            ex.lines.append(f"  may start in: {', '.join(live.partitions) or 'default partition'}")
            if live.start_time:
                ex.lines.append(f"  Slurm's own start estimate: {_when(live.start_time)}")
        elif live.running:
            ex.lines.append(
                f"  running in {', '.join(live.partitions)} since {_when(live.start_time)}"
            )
    elif row is not None:
        if row.final_state:
            ex.lines.append(f"  final state: {row.final_state}")
        elif row.left_at:
            ex.lines.append(
                f"  left the queue at {_when(row.left_at)}; "
                "final state unknown (no accounting record)"
            )
        else:
            ex.lines.append(
                f"  last seen {row.state} at {_when(row.last_seen)}"
                + (f", Slurm's reason: {row.reason}" if row.reason else "")
            )
    if row is not None:
        ex.lines.append(
            f"  submitted {_when(row.submit_time or None)}; allowed partitions: {allowed or 'any'}"
        )
        if row.start_time is not None:
            wait = row.start_time - row.submit_time if row.submit_time else None
            ex.lines.append(
                f"  started {_when(row.start_time)} in {row.partition or '?'}"
                + (f" on {row.gpu_type_run} GPUs" if row.gpu_type_run else "")
                + f" after waiting {_dur(wait)}"
            )
        if row.end_time is not None and row.start_time is not None:
            ex.lines.append(
                f"  ended {_when(row.end_time)} after {_dur(row.end_time - row.start_time)}"
            )
    ex.data["job"] = {
        "state": live.state.value if live else (row.final_state or row.state if row else None),
        "reason": live.reason if live else (row.reason if row else None),
        "left_queue": bool(row and row.left_at),
        "partition": row.partition if row else None,
        "allowed": (allowed or None) if row else None,
        "submit": row.submit_time if row else None,
        "start": row.start_time if row else None,
        "end": row.end_time if row else None,
        "managed": bool(row and row.managed),
    }


def _decisions(ex: Explanation, decs: list[Decision], *, managed: bool) -> None:
    if not decs:
        ex.lines.append(
            "slurmopt did not place this job"
            + (
                " (it was submitted through optsub, but no decision was recorded)."
                if managed
                else "; where and when it runs is Slurm's own decision."
            )
        )
    for d in decs:
        verb = (
            "moved it to"
            if d.source == "controller" and d.applied
            else ("placed it in" if d.applied else "would place it in")
        )
        ex.lines.append(
            f"{_when(d.decided_at)}: {d.source} ({d.mode or 'n/a'}) {verb} "
            f"{d.to_partition or 'the partitions as written'}"
            + (f" [{d.outcome}]" if d.outcome else "")
        )
        if d.reason:
            ex.lines.append(f"  why: {d.reason}")
        if d.predicted_start is not None:
            ex.lines.append(
                f"  predicted start {_when(d.predicted_start)}, end {_when(d.predicted_end)}"
            )
        for c in d.candidates or []:
            if not isinstance(c, dict):
                continue
            mark = "*" if c.get("chosen") else " "
            desc = (
                f"start {_when(c.get('start'))}, end {_when(c.get('end'))}"
                if c.get("eligible", True) and c.get("start") is not None
                else f"not eligible: {c.get('reason') or '?'}"
            )
            ex.lines.append(f"   {mark} {c.get('partition')}: {desc}")
    ex.data["decisions"] = [
        {
            "at": d.decided_at,
            "source": d.source,
            "mode": d.mode,
            "to": d.to_partition,
            "applied": d.applied,
            "outcome": d.outcome,
            "reason": d.reason,
            "predicted_start": d.predicted_start,
            "candidates": d.candidates,
        }
        for d in decs
    ]


def _predictions(ex: Explanation, preds: list[Prediction]) -> None:
    if preds:
        p = preds[-1]
        ex.lines.append(
            f"Predicted runtime: {_dur(p.runtime_s)} ({p.predictor}, {p.basis or 'n/a'}), "
            f"made {_when(p.made_at)}; {len(preds)} prediction(s) in all."
        )
    ex.data["predictions"] = [
        {"at": p.made_at, "predictor": p.predictor, "runtime_s": p.runtime_s, "basis": p.basis}
        for p in preds
    ]
