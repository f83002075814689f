"""Report sections about usage and outcomes: users, decisions, predictions, GPU efficiency."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from slurmopt.history.learn import finished_jobs, prediction_accuracy, runtime_of, speed_factors
from slurmopt.history.orm import Decision, JobRow, TelemetrySample, TrustRefusal
from slurmopt.history.reports import Chart, Filters, Section, _median, _wait, jobs_in


def users(session: Session, f: Filters) -> list[Section]:
    """Jobs, GPU-hours and waits per user."""
    agg: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"jobs": 0, "started": 0, "gpu_h": 0.0, "waits": [], "managed": 0}
    )
    for r in jobs_in(session, f):
        a = agg[r.user]
        a["jobs"] += 1
        a["started"] += r.start_time is not None
        a["managed"] += r.managed
        rt = runtime_of(r)
        if rt is not None:
            a["gpu_h"] += r.gpus * rt / 3600.0
        w = _wait(r)
        if w is not None:
            a["waits"].append(w)
    eff = _gpu_efficiency(session, f)
    rows = [
        [
            u,
            a["jobs"],
            a["started"],
            a["managed"],
            round(a["gpu_h"], 2),
            _median(a["waits"]),
            eff.get(u, {}).get("util"),
        ]
        for u, a in sorted(agg.items())
    ]
    return [
        Section(
            "Users",
            [
                "user",
                "jobs",
                "started",
                "managed",
                "GPU-hours",
                "median wait (s)",
                "mean GPU util %",
            ],
            rows,
            note="GPU-hours: GPUs x observed runtime of jobs whose start and end were seen. "
            "GPU utilization from telemetry samples, when present.",
            chart=Chart(
                "bar",
                "GPU-hours per user",
                ylabel="GPU-hours",
                series={u: round(a["gpu_h"], 2) for u, a in sorted(agg.items())},
            ),
        )
    ]


def decisions(session: Session, f: Filters) -> list[Section]:
    """Decisions and their realized gains (Slurm's own estimate vs the actual start)."""
    q = select(Decision).order_by(Decision.decided_at)
    if f.since is not None:
        q = q.where(Decision.decided_at >= f.since)
    if f.until is not None:
        q = q.where(Decision.decided_at < f.until)
    decs = list(session.execute(q).scalars())
    ids = {d.job_id for d in decs}
    rows_by = (
        {
            r.job_id: r
            for r in session.execute(select(JobRow).where(JobRow.job_id.in_(ids))).scalars()
        }
        if ids
        else {}
    )
    rows = []
    realized: list[float] = []
    for d in decs:
        j = rows_by.get(d.job_id)
        if f.user and (j is None or j.user != f.user):
            continue
        if f.partition and f.partition not in (d.to_partition, *d.from_partitions.split(",")):
            continue
        start = j.start_time if j else None
        est = d.slurm_estimate_start or (j.slurm_estimate_start if j else None)
        gain = float(est - start) if est and start is not None else None
        if gain is not None and d.applied:
            realized.append(gain)
        rows.append(
            [
                d.decided_at,
                d.job_id,
                d.source,
                d.mode,
                d.from_partitions,
                d.to_partition,
                d.predicted_start,
                start,
                est,
                d.gain_s,
                gain,
                d.applied,
                d.outcome,
                d.managed_by or "",
            ]
        )
    cols = [
        "decided",
        "job",
        "source",
        "mode",
        "from",
        "to",
        "predicted start",
        "actual start",
        "Slurm estimate",
        "predicted gain (s)",
        "realized gain (s)",
        "applied",
        "outcome",
        "managed by",
    ]
    return [
        Section(
            "Decisions",
            cols,
            rows,
            note="Realized gain: Slurm's own start estimate (first seen while pending) minus the "
            "observed start; a proxy, since what Slurm would have done is not observable. "
            f"Applied decisions with a known gain: {len(realized)}, median "
            f"{_median(realized)} s.",
            chart=Chart(
                "hist",
                "Realized gain of applied decisions (s)",
                "seconds",
                "decisions",
                {"realized gain": realized},
            ),
            time_columns=("decided", "predicted start", "actual start", "Slurm estimate"),
        ),
        *refusals(session, f),
    ]


def refusals(session: Session, f: Filters) -> list[Section]:
    """Inputs refused for a trust reason (docs/security.md): counts by reason, then each one."""
    q = select(TrustRefusal).order_by(TrustRefusal.at)
    if f.since is not None:
        q = q.where(TrustRefusal.at >= f.since)
    if f.until is not None:
        q = q.where(TrustRefusal.at < f.until)
    got = list(session.execute(q).scalars())
    if f.user:
        got = [r for r in got if r.who == f.user]
    rows: list[list[Any]] = [[r.at, r.component, r.who, r.what, r.why] for r in got]
    return [
        Section(
            "Refused input",
            ["at", "component", "who", "what", "why"],
            rows,
            note=f"{len(rows)} spool file(s), record(s) or claim(s) not used for a trust or size "
            "reason (each is also a log line and the slurmopt_trust_refusals counter).",
            time_columns=("at",),
        )
    ]


def predictions(
    session: Session, f: Filters, *, configured_speeds: Mapping[str, float] | None = None
) -> list[Section]:
    """How predictions held, and speed factors learned from recurring jobs."""
    acc = prediction_accuracy(session, since=f.since, until=f.until)
    rt_rows = [
        [n, v["n"], round(v["median_abs_log"], 3), round(v["under_share"], 3)]
        for n, v in acc["runtime"].items()
    ]
    st = acc["start_abs_error_s"]
    st_rows = [[who, s["n"], s["median"], s["mean"], s["p90"]] for who, s in st.items()]
    learned = speed_factors(finished_jobs(session, since=f.since, until=f.until))
    conf = dict(configured_speeds or {})
    sp_rows = [[t, round(e.factor, 3), conf.get(t), e.groups, e.jobs] for t, e in learned.items()]
    return [
        Section(
            "Runtime predictions",
            ["predictor", "jobs", "median |ln(pred/actual)|", "share under-predicted"],
            rt_rows,
            note="First prediction made before each job started, against its observed runtime.",
        ),
        Section(
            "Start predictions",
            ["source", "jobs", "median |error| (s)", "mean |error| (s)", "p90 |error| (s)"],
            st_rows,
            note="slurmopt: the last decision's predicted start before the job started; "
            "slurm: Slurm's own backfill estimate, first seen while pending.",
            chart=Chart(
                "bar",
                "Median start error (s)",
                ylabel="seconds",
                series={k: v["median"] or 0 for k, v in st.items()},
            ),
        ),
        Section(
            "Speed factors",
            ["GPU type", "learned (vs reference)", "configured", "groups", "jobs"],
            sp_rows,
            note="Learned from recurring jobs (same user and name, else same user and "
            "account) that ran on several GPU types; the reference type is 1.0.",
        ),
    ]


def _gpu_efficiency(session: Session, f: Filters) -> dict[str, dict[str, float]]:
    return {u: {"util": round(v["util"], 1)} for u, v in _gpu_usage(session, f)[1].items()}


def _gpu_usage(
    session: Session, f: Filters
) -> tuple[dict[int, dict[str, Any]], dict[str, dict[str, float]]]:
    q = select(TelemetrySample).where(
        TelemetrySample.job_id.is_not(None), TelemetrySample.gpu_index >= 0
    )
    if f.since is not None:
        q = q.where(TelemetrySample.at >= f.since)
    if f.until is not None:
        q = q.where(TelemetrySample.at < f.until)
    samples = list(
        session.execute(
            q.order_by(TelemetrySample.node, TelemetrySample.gpu_index, TelemetrySample.at)
        ).scalars()
    )
    if not samples:
        return {}, {}
    ids = {s.job_id for s in samples}
    owner = {
        r.job_id: r.user
        for r in session.execute(select(JobRow).where(JobRow.job_id.in_(ids))).scalars()
    }
    per_job: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"hours": 0.0, "idle": 0.0, "utils": []}
    )
    for a, b in zip(samples, [*samples[1:], None], strict=True):
        same = b is not None and (b.node, b.gpu_index) == (a.node, a.gpu_index)
        dt = min(600.0, float(b.at - a.at)) if same and b is not None else 60.0
        if a.job_id is None or a.util_pct is None:
            continue
        if f.user and owner.get(a.job_id) != f.user:
            continue
        pj = per_job[a.job_id]
        pj["hours"] += dt / 3600.0
        pj["idle"] += dt / 3600.0 * (1.0 - min(100.0, a.util_pct) / 100.0)
        pj["utils"].append(a.util_pct)
    per_user: dict[str, dict[str, float]] = {}
    for jid, v in per_job.items():
        u = owner.get(jid, "?")
        pu = per_user.setdefault(u, {"hours": 0.0, "idle": 0.0, "util": 0.0})
        pu["hours"] += v["hours"]
        pu["idle"] += v["idle"]
    for pu in per_user.values():
        pu["util"] = 100.0 * (1.0 - pu["idle"] / pu["hours"]) if pu["hours"] else 0.0
    for jid, v in per_job.items():
        v["user"] = owner.get(jid, "?")
    return dict(per_job), per_user


def gpu(session: Session, f: Filters, *, top: int = 20) -> list[Section]:
    """GPU efficiency per user and job, and the top waste (GPU-hours allocated but idle)."""
    per_job, per_user = _gpu_usage(session, f)
    if not per_job:
        return [
            Section(
                "GPU efficiency", ["note"], [["no telemetry samples with a job in this window"]]
            )
        ]
    user_rows = [
        [u, round(v["hours"], 2), round(v["idle"], 2), round(v["util"], 1)]
        for u, v in sorted(per_user.items())
    ]
    waste = sorted(per_job.items(), key=lambda kv: -kv[1]["idle"])[:top]
    waste_rows = [
        [
            jid,
            v["user"],
            round(v["hours"], 2),
            round(v["idle"], 2),
            round(statistics.fmean(v["utils"]), 1),
        ]
        for jid, v in waste
    ]
    return [
        Section(
            "GPU efficiency per user",
            ["user", "GPU-hours sampled", "idle GPU-hours", "mean util %"],
            user_rows,
            note="From telemetry samples attributed to jobs; each sample counts until the "
            "next one of the same GPU (at most 10 min).",
        ),
        Section(
            "Top waste (GPU-hours allocated but idle)",
            ["job", "user", "GPU-hours", "idle GPU-hours", "mean util %"],
            waste_rows,
            chart=Chart(
                "bar",
                "Idle GPU-hours, top jobs",
                ylabel="GPU-hours",
                series={f"{jid} ({v['user']})": round(v["idle"], 2) for jid, v in waste},
            ),
        ),
    ]
