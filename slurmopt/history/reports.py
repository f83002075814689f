"""The ``slurmopt report`` contents: plain data (sections of rows, chart series).

Rendering (table, CSV, JSON, HTML with charts) is in
:mod:`slurmopt.history.render`. Every report takes the same :class:`Filters`
(time window, user, partition). Times in rows are epoch seconds; durations
seconds; the renderers format them.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from slurmopt.history.learn import prediction_accuracy, runtime_of
from slurmopt.history.orm import (
    ControllerRun,
    Decision,
    JobRow,
    PartitionSample,
)

KINDS = (
    "summary",
    "partitions",
    "users",
    "jobs",
    "decisions",
    "predictions",
    "gpu",
    "refusals",
)

ChartKind = Literal["line", "bar", "box", "hist"]


@dataclass(frozen=True)
class Filters:
    """What a report covers."""

    since: int | None = None
    until: int | None = None
    user: str | None = None
    partition: str | None = None


@dataclass
class Chart:
    """A chart: ``line`` series are (x, y) lists; ``bar`` one value per label;
    ``box`` / ``hist`` one list of values per series."""

    kind: ChartKind
    title: str
    xlabel: str = ""
    ylabel: str = ""
    series: dict[str, Any] = field(default_factory=dict)


@dataclass
class Section:
    """A titled table, with an optional note and chart."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    chart: Chart | None = None
    time_columns: tuple[str, ...] = ()
    """Columns holding epoch seconds (rendered as dates in tables and HTML)."""


@dataclass
class Report:
    """One report: what was asked, when, and its sections."""

    kind: str
    title: str
    filters: Filters
    generated_at: int
    sections: list[Section]

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form: sections as lists of row objects (charts left out)."""
        return {
            "report": self.kind,
            "title": self.title,
            "generated_at": self.generated_at,
            "filters": asdict(self.filters),
            "sections": [
                {
                    "title": s.title,
                    "note": s.note,
                    "columns": s.columns,
                    "rows": [dict(zip(s.columns, r, strict=True)) for r in s.rows],
                }
                for s in self.sections
            ],
        }


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _jobs_query(f: Filters) -> Select[JobRow]:
    q = select(JobRow)
    if f.since is not None:
        q = q.where(JobRow.last_seen >= f.since)
    if f.until is not None:
        q = q.where(JobRow.submit_time < f.until)
    if f.user:
        q = q.where(JobRow.user == f.user)
    return q.order_by(JobRow.submit_time, JobRow.job_id)


def _in_partition(row: JobRow, part: str | None) -> bool:
    if not part:
        return True
    if row.partition:
        return row.partition == part
    return part in row.current_partitions.split(",")


def jobs_in(session: Session, f: Filters) -> list[JobRow]:
    """Jobs seen in the window, filtered by user and partition."""
    return [r for r in session.execute(_jobs_query(f)).scalars() if _in_partition(r, f.partition)]


def _wait(r: JobRow) -> float | None:
    if r.start_time is None or not r.submit_time:
        return None
    return float(max(0, r.start_time - r.submit_time))


# -- reports ---------------------------------------------------------------------------


def summary(session: Session, f: Filters) -> list[Section]:
    """Jobs, waits, decisions, controller runs and prediction accuracy, at a glance."""
    jobs = jobs_in(session, f)
    waits = [w for r in jobs if (w := _wait(r)) is not None]
    states = Counter(
        r.final_state or ("left (state unknown)" if r.left_at else r.state) for r in jobs
    )
    dq = select(Decision)
    if f.since is not None:
        dq = dq.where(Decision.decided_at >= f.since)
    if f.until is not None:
        dq = dq.where(Decision.decided_at < f.until)
    ids = {r.job_id for r in jobs}
    decs = [
        d for d in session.execute(dq).scalars() if not (f.user or f.partition) or d.job_id in ids
    ]
    rq = select(ControllerRun)
    if f.since is not None:
        rq = rq.where(ControllerRun.started_at >= f.since)
    if f.until is not None:
        rq = rq.where(ControllerRun.started_at < f.until)
    runs = list(session.execute(rq).scalars())
    acc = prediction_accuracy(session, since=f.since, until=f.until)
    rows: list[list[Any]] = [
        ["jobs seen", len(jobs)],
        ["jobs started", sum(1 for r in jobs if r.start_time is not None)],
        ["jobs that left the queue", sum(1 for r in jobs if r.left_at is not None)],
        ["managed (optsub / opted in)", sum(1 for r in jobs if r.managed)],
        ["median wait (s)", _median(waits)],
        ["90th percentile wait (s)", _pct(waits, 0.9)],
        ["decisions", len(decs)],
        ["decisions applied", sum(1 for d in decs if d.applied)],
        ["controller runs", len(runs)],
        ["controller runs with errors", sum(1 for r in runs if r.error)],
        [
            "mean controller wall time (s)",
            statistics.fmean(r.wall_s for r in runs) if runs else None,
        ],
    ]
    for name, v in acc["runtime"].items():
        rows.append(
            [f"runtime prediction {name}: median |ln(pred/actual)|", round(v["median_abs_log"], 3)]
        )
        rows.append(
            [f"runtime prediction {name}: share under-predicted", round(v["under_share"], 3)]
        )
    state_rows = [[k, v] for k, v in sorted(states.items())]
    return [
        Section("Summary", ["metric", "value"], rows),
        Section(
            "Job states",
            ["state", "jobs"],
            state_rows,
            note="Final states come from accounting only (slurmopt ingest sacct); a job that "
            "left the queue without accounting keeps an unknown state.",
            chart=Chart("bar", "Jobs by state", ylabel="jobs", series=dict(states)),
        ),
    ]


def partitions(session: Session, f: Filters) -> list[Section]:
    """Utilization over time and wait distribution per partition."""
    q = select(PartitionSample).order_by(PartitionSample.taken_at)
    if f.since is not None:
        q = q.where(PartitionSample.taken_at >= f.since)
    if f.until is not None:
        q = q.where(PartitionSample.taken_at < f.until)
    if f.partition:
        q = q.where(PartitionSample.partition == f.partition)
    by: dict[str, list[PartitionSample]] = defaultdict(list)
    for s in session.execute(q).scalars():
        by[s.partition].append(s)
    waits: dict[str, list[float]] = defaultdict(list)
    for r in jobs_in(session, f):
        wt = _wait(r)
        if wt is not None and r.partition:
            waits[r.partition].append(wt)
    rows = []
    util_series: dict[str, Any] = {}
    for name in sorted(set(by) | set(waits)):
        ss = by.get(name, [])
        gpu = [100.0 * s.gpus_used / s.gpus_total for s in ss if s.gpus_total]
        cpu = [100.0 * s.cpus_alloc / s.cpus_total for s in ss if s.cpus_total]
        w = waits.get(name, [])
        rows.append(
            [
                name,
                len(ss),
                round(statistics.fmean(gpu), 1) if gpu else None,
                round(statistics.fmean(cpu), 1) if cpu else None,
                round(statistics.fmean(s.jobs_pending for s in ss), 1) if ss else None,
                len(w),
                _median(w),
                _pct(w, 0.9),
            ]
        )
        if ss:
            key = "gpu" if gpu else "cpu"
            util_series[name] = (
                [s.taken_at for s in ss if (s.gpus_total if key == "gpu" else s.cpus_total)],
                gpu if gpu else cpu,
            )
    cols = [
        "partition",
        "samples",
        "mean GPU util %",
        "mean CPU util %",
        "mean pending jobs",
        "jobs started",
        "median wait (s)",
        "p90 wait (s)",
    ]
    return [
        Section(
            "Partitions",
            cols,
            rows,
            note="Utilization: allocated / configured, averaged over the controller's snapshots "
            "(GPU where the partition has GPUs).",
            chart=Chart("line", "Utilization over time (%)", "time", "%", util_series),
        ),
        Section(
            "Wait time distribution",
            ["partition", "jobs", "median wait (s)", "p90 wait (s)", "max wait (s)"],
            [[p, len(w), _median(w), _pct(w, 0.9), max(w)] for p, w in sorted(waits.items())],
            chart=Chart("box", "Wait per partition (s)", "partition", "seconds", dict(waits)),
        ),
    ]


def jobs(session: Session, f: Filters, *, limit: int = 1000) -> list[Section]:
    """One row per job (most recent first, up to ``limit``)."""
    rows = []
    for r in list(reversed(jobs_in(session, f)))[:limit]:
        rows.append(
            [
                r.job_id,
                r.user,
                r.name,
                r.final_state or r.state,
                "left" if r.left_at else "",
                r.allowed_partitions,
                r.partition,
                r.submit_time or None,
                r.start_time,
                r.end_time,
                _wait(r),
                runtime_of(r),
                r.time_limit_s,
                r.managed,
            ]
        )
    cols = [
        "job",
        "user",
        "name",
        "state",
        "queue",
        "allowed",
        "partition",
        "submit",
        "start",
        "end",
        "wait (s)",
        "runtime (s)",
        "limit (s)",
        "managed",
    ]
    return [Section("Jobs", cols, rows, time_columns=("submit", "start", "end"))]


def builders() -> dict[str, Callable[..., list[Section]]]:
    """Report kind -> section builder."""
    from slurmopt.history import reports_usage as u

    return {
        "summary": summary,
        "partitions": partitions,
        "users": u.users,
        "jobs": jobs,
        "decisions": u.decisions,
        "predictions": u.predictions,
        "gpu": u.gpu,
        "refusals": u.refusals,
    }


def build(session: Session, kind: str, f: Filters, **options: Any) -> Report:
    """Build report ``kind`` (one of :data:`KINDS`).

    Raises:
        KeyError: unknown kind.
    """
    sections = builders()[kind](session, f, **options)
    return Report(kind, f"slurmopt {kind} report", f, int(time.time()), sections)
