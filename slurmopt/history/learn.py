"""Closing the loop: predictions from the database, learned speed factors, and how past
predictions held.

* :func:`trained_predictor` feeds a predictor with every finished job the
  database knows (start and end observed), oldest end first;
* :func:`predict_runtimes` predicts the runtime of the snapshot's jobs for the
  optimizer (``Problem.build(runtimes=...)``) and records the predictions; a
  running job that outlived its prediction is re-predicted;
* :func:`speed_factors` estimates per-GPU-type speed from recurring jobs (same
  user and job name, else same user and account) that ran on several GPU types;
* :func:`prediction_accuracy` compares recorded predictions (runtime, start)
  with what happened, next to Slurm's own start estimate.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from slurmopt.history.ingest import record_prediction
from slurmopt.history.orm import Decision, JobRow, Prediction
from slurmopt.history.predict import Envelope, Estimate, JobInfo, Predictor, repredict
from slurmopt.model import Job


def runtime_of(row: JobRow) -> float | None:
    """Observed runtime in seconds (None until both start and end are known)."""
    if row.start_time is None or row.end_time is None:
        return None
    return float(max(0, row.end_time - row.start_time))


def _cpus(request: Mapping[str, Any]) -> float:
    v = request.get("cpus_min") if isinstance(request, Mapping) else None
    return float(v) if isinstance(v, int | float) else 1.0


def info_from_row(row: JobRow, runtime_s: float = 0.0) -> JobInfo:
    """What a predictor sees of a recorded job."""
    return JobInfo(
        user=row.user or None,
        runtime_s=runtime_s,
        time_limit_s=row.time_limit_s,
        name=row.name or None,
        account=row.account,
        cpus=_cpus(row.request),
        gpus=float(row.gpus),
    )


def info_from_job(job: Job) -> JobInfo:
    """What a predictor sees of a job in a snapshot."""
    return JobInfo(
        user=job.user or None,
        time_limit_s=job.request.time_limit_s,
        name=job.name or None,
        account=job.account,
        cpus=float(job.request.cpus_min),
        gpus=float(job.request.gpus_total()),
    )


def finished_jobs(
    session: Session, *, since: int | None = None, until: int | None = None
) -> list[JobRow]:
    """Jobs with an observed start and end, oldest end first."""
    q = select(JobRow).where(JobRow.start_time.is_not(None), JobRow.end_time.is_not(None))
    if since is not None:
        q = q.where(JobRow.end_time >= since)
    if until is not None:
        q = q.where(JobRow.end_time < until)
    return list(session.execute(q.order_by(JobRow.end_time, JobRow.id)).scalars())


LIMIT_RATIO_JOBS = 500
""":func:`limit_ratios` looks at this many most recently finished jobs."""
LIMIT_RATIO_MIN_JOBS = 20
"""...and learns a partition's share (and the site's) from at least this many."""
LIMIT_RATIO_QUANTILE = 0.9
"""The share learned: an upper quantile, so that a running job is rarely expected to
free its GPUs before it does (as the Envelope predictor errs on the long side)."""


def limit_ratios(
    session: Session,
    *,
    last: int = LIMIT_RATIO_JOBS,
    min_jobs: int = LIMIT_RATIO_MIN_JOBS,
    quantile: float = LIMIT_RATIO_QUANTILE,
) -> dict[str, float]:
    """The share of their time limit finished jobs used, per partition and site-wide (``'*'``).

    From the ``last`` most recently finished jobs with a time limit (observed start and
    end): the ``quantile`` of runtime / limit (capped at 1, at least 0.001), for each
    partition with at least ``min_jobs`` of them, and over all of them (``'*'``) when
    there are that many. For :attr:`slurmopt.optimize.config.OptimizeConfig.limit_ratio`.
    """
    q = (
        select(JobRow.partition, JobRow.start_time, JobRow.end_time, JobRow.time_limit_s)
        .where(
            JobRow.start_time.is_not(None),
            JobRow.end_time.is_not(None),
            JobRow.time_limit_s > 0,
        )
        .order_by(JobRow.end_time.desc(), JobRow.id.desc())
        .limit(last)
    )
    per: dict[str, list[float]] = defaultdict(list)
    for part, start, end, limit in session.execute(q):
        if start is None or end is None or not limit:
            continue
        r = min(1.0, max(0.001, (end - start) / limit))
        per["*"].append(r)
        if part:
            per[str(part)].append(r)
    out: dict[str, float] = {}
    for key, vals in per.items():
        if len(vals) >= min_jobs:
            vals.sort()
            out[key] = round(vals[min(len(vals) - 1, math.ceil(quantile * len(vals)) - 1)], 4)
    return out


def trained_predictor(
    session: Session,
    predictor: Predictor | None = None,
    *,
    speeds: Mapping[str, float] | None = None,
    since: int | None = None,
) -> Predictor:
    """A predictor that has observed every finished job in the database (ended
    after ``since`` when given: a long history need not be replayed each cycle).

    With ``speeds`` (GPU type -> speed factor), runtimes are converted to the
    reference speed (runtime x speed of the GPU type it ran on) first.
    """
    pred = predictor or Envelope()
    for row in finished_jobs(session, since=since):
        rt = runtime_of(row)
        if rt is None:
            continue
        if speeds and row.gpu_type_run:
            rt *= speeds.get(row.gpu_type_run, 1.0)
        pred.observe(info_from_row(row, rt))
    return pred


def predict_runtimes(
    session: Session,
    jobs: Iterable[Job],
    predictor: Predictor,
    *,
    now: int,
    cluster: str = "",
    record: bool = True,
) -> dict[int, Estimate]:
    """Predict each job's runtime; re-predict running jobs that outlived it.

    Pending and running jobs get an :class:`~slurmopt.history.predict.Estimate`
    (pass ``{k: e.runtime_s}`` to the optimizer). With ``record``, a prediction
    is written when the job has none from this predictor yet or its value changed.
    """
    out: dict[int, Estimate] = {}
    for job in jobs:
        if not (job.pending or job.running):
            continue
        last = _last_prediction(session, job.job_id, predictor.name, cluster)
        est = predictor.predict(info_from_job(job))
        if job.running and job.start_time:
            elapsed = max(0.0, float(now - job.start_time))
            limit = job.request.time_limit_s
            if last is not None and last > elapsed:
                est = Estimate(last, "kept")  # still within its prediction: stable
            while est.runtime_s <= elapsed and (limit is None or est.runtime_s < limit):
                est = repredict(est, elapsed, limit)
        out[job.job_id] = est
        if record and (last is None or abs(last - est.runtime_s) >= 1.0):
            record_prediction(
                session,
                job_id=job.job_id,
                made_at=now,
                predictor=predictor.name,
                runtime_s=est.runtime_s,
                cluster=cluster,
                basis=est.basis[:128],
                partition=job.partitions[0] if job.running and job.partitions else None,
            )
    return out


def _last_prediction(session: Session, job_id: int, predictor: str, cluster: str) -> float | None:
    return session.execute(
        select(Prediction.runtime_s)
        .where(
            Prediction.cluster == cluster,
            Prediction.job_id == job_id,
            Prediction.predictor == predictor,
        )
        .order_by(Prediction.made_at.desc())
        .limit(1)
    ).scalar_one_or_none()


# -- speed factors ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeedEstimate:
    """A learned speed factor of one GPU type, relative to the reference type."""

    gpu_type: str
    factor: float
    """Reference runtime / this type's runtime (> 1: faster than the reference)."""
    groups: int
    """Recurring job groups that ran on both this type and the reference."""
    jobs: int


def speed_factors(
    rows: Iterable[JobRow], *, reference: str | None = None, min_groups: int = 1
) -> dict[str, SpeedEstimate]:
    """Per-GPU-type speed from recurring jobs that ran on several types.

    A recurring group is the same user and job name (else the same user and
    account). Per group and GPU type the median runtime is taken; a type's
    factor is the median over groups of (reference median / type median).
    The reference is ``reference`` or the type with the most groups.
    """
    per: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        rt = runtime_of(r)
        if rt is None or rt <= 0 or not r.gpu_type_run:
            continue
        key = (r.user, "n", r.name) if r.name else (r.user, "a", r.account or "")
        per[key][r.gpu_type_run].append(rt)
    multi = {k: v for k, v in per.items() if len(v) >= 2}
    if not multi:
        return {}
    if reference is None:
        counts: dict[str, int] = defaultdict(int)
        for types in multi.values():
            for t in types:
                counts[t] += 1
        reference = max(sorted(counts), key=lambda t: counts[t])
    ratios: dict[str, list[float]] = defaultdict(list)
    njobs: dict[str, int] = defaultdict(int)
    for types in multi.values():
        if reference not in types:
            continue
        ref = statistics.median(types[reference])
        for t, runs in types.items():
            ratios[t].append(ref / statistics.median(runs))
            njobs[t] += len(runs)
    return {
        t: SpeedEstimate(t, math.exp(statistics.median(math.log(x) for x in v)), len(v), njobs[t])
        for t, v in sorted(ratios.items())
        if len(v) >= min_groups
    }


def scaled_to(
    learned: Mapping[str, SpeedEstimate], configured: Mapping[str, float]
) -> dict[str, float]:
    """Learned factors on the configured scale (the reference keeps its configured speed)."""
    ref = next((t for t, e in learned.items() if e.factor == 1.0 and t in configured), None)
    base = configured.get(ref, 1.0) if ref else 1.0
    return {t: e.factor * base for t, e in learned.items()}


def learned_gpu_speed(
    session: Session, configured: Mapping[str, float], *, min_groups: int = 2
) -> dict[str, float]:
    """``configured`` with the types learned from history replaced (for ``[optimize] gpu_speed``).

    Types learned from fewer than ``min_groups`` recurring groups keep their
    configured value; the reference type keeps its configured speed.
    """
    learned = speed_factors(finished_jobs(session), min_groups=min_groups)
    ref = next((t for t, e in learned.items() if e.factor == 1.0), None)
    if ref is None or ref not in configured:
        return dict(configured)
    return {**configured, **scaled_to(learned, configured)}


# -- how past predictions held --------------------------------------------------------


def _stats(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "mean": None, "p90": None}
    s = sorted(values)
    return {
        "n": len(s),
        "median": statistics.median(s),
        "mean": statistics.fmean(s),
        "p90": s[min(len(s) - 1, int(0.9 * len(s)))],
    }


def prediction_accuracy(
    session: Session, *, since: int | None = None, until: int | None = None
) -> dict[str, Any]:
    """How recorded predictions held, for jobs that finished in the window.

    Runtime: the first prediction of each predictor made before the job
    started: median |ln(predicted/actual)| and share under-predicted.
    Start: slurmopt's predicted start (the last decision before the job
    started) and Slurm's own estimate, against the observed start: absolute
    error in seconds.
    """
    jobs = {r.job_id: r for r in finished_jobs(session, since=since, until=until)}
    by_pred: dict[str, list[float]] = defaultdict(list)
    if jobs:
        preds = session.execute(
            select(Prediction).where(Prediction.job_id.in_(list(jobs))).order_by(Prediction.made_at)
        ).scalars()
        seen: set[tuple[int, str]] = set()
        for p in preds:
            row = jobs[p.job_id]
            rt = runtime_of(row)
            key = (p.job_id, p.predictor)
            if key in seen or rt is None or row.start_time is None or p.made_at > row.start_time:
                continue
            seen.add(key)
            by_pred[p.predictor].append(math.log(max(p.runtime_s, 1.0) / max(rt, 1.0)))
    runtime = {
        name: {
            "n": len(v),
            "median_abs_log": statistics.median(abs(x) for x in v),
            "under_share": sum(x < 0 for x in v) / len(v),
        }
        for name, v in sorted(by_pred.items())
    }
    ours: list[float] = []
    slurm: list[float] = []
    if jobs:
        decs = session.execute(
            select(Decision)
            .where(Decision.job_id.in_(list(jobs)), Decision.predicted_start.is_not(None))
            .order_by(Decision.decided_at)
        ).scalars()
        last: dict[int, float] = {}
        for d in decs:
            row = jobs[d.job_id]
            if row.start_time is not None and d.decided_at <= row.start_time:
                assert d.predicted_start is not None
                last[d.job_id] = d.predicted_start
        ours = [abs(v - float(jobs[k].start_time or 0)) for k, v in last.items()]
        slurm = [
            abs(float(r.slurm_estimate_start) - float(r.start_time))
            for r in jobs.values()
            if r.slurm_estimate_start and r.start_time is not None
        ]
    return {
        "jobs": len(jobs),
        "runtime": runtime,
        "start_abs_error_s": {"slurmopt": _stats(ours), "slurm": _stats(slurm)},
    }
