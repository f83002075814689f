"""Predictions from the database, learned speed factors, accuracy of past predictions."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import Engine, func, select

from slurmopt.history.db import transaction
from slurmopt.history.ingest import record_decision, record_prediction
from slurmopt.history.learn import (
    learned_gpu_speed,
    predict_runtimes,
    prediction_accuracy,
    scaled_to,
    speed_factors,
    trained_predictor,
)
from slurmopt.history.orm import JobRow, Prediction
from slurmopt.model import JobState

from .conftest import job


def _row(
    job_id: int,
    *,
    user: str = "alice",
    name: str = "train",
    start: int,
    runtime: int,
    gpu: str | None = "a100",
    limit: int = 3600,
    est: int | None = None,
) -> JobRow:
    return JobRow(
        cluster="",
        job_id=job_id,
        submit_time=start - 10,
        name=name,
        user=user,
        account="proj",
        allowed_partitions="a100,h100",
        current_partitions=gpu or "",
        request={"cpus_min": 1},
        gpus=2,
        time_limit_s=limit,
        start_time=start,
        end_time=start + runtime,
        gpu_type_run=gpu,
        partition=gpu,
        state="RUNNING",
        first_seen=start - 10,
        last_seen=start + runtime,
        left_at=start + runtime,
        slurm_estimate_start=est,
        managed=False,
    )


def test_speed_factors_from_recurring_jobs(engine: Engine) -> None:
    rows = []
    n = 0
    for user, base in (("alice", 1000), ("bob", 3000), ("carol", 500)):
        for k in range(3):
            n += 1
            rows.append(_row(n, user=user, start=10_000 * n, runtime=base + k, gpu="a100"))
            n += 1
            rows.append(_row(n, user=user, start=10_000 * n, runtime=(base + k) // 2, gpu="h100"))
    n += 1
    rows.append(_row(n, user="dave", start=10_000 * n, runtime=10, gpu="h100"))  # one type only
    with transaction(engine) as s:
        s.add_all(rows)
    with transaction(engine) as s:
        from slurmopt.history.learn import finished_jobs

        learned = speed_factors(finished_jobs(s), reference="a100")
    assert set(learned) == {"a100", "h100"}
    assert learned["a100"].factor == 1.0
    assert learned["h100"].factor == pytest.approx(2.0, rel=0.01)
    assert (learned["h100"].groups, learned["h100"].jobs) == (3, 9)
    assert scaled_to(learned, {"a100": 2.5, "h100": 4.0})["h100"] == pytest.approx(5.0, rel=0.01)
    with transaction(engine) as s:
        speeds = learned_gpu_speed(s, {"a100": 2.5, "h100": 4.0, "v100": 1.0})
        few = learned_gpu_speed(s, {"a100": 2.5, "h100": 4.0}, min_groups=4)
    assert speeds["h100"] == pytest.approx(5.0, rel=0.01) and speeds["v100"] == 1.0
    assert few == {"a100": 2.5, "h100": 4.0}  # too few groups: configuration kept


def test_predict_runtimes_repredicts_and_records_once(engine: Engine) -> None:
    with transaction(engine) as s:
        s.add_all([_row(i, start=1000 * i, runtime=100 + i) for i in range(1, 5)])
    now = 100_000
    pending = job(50)
    running = job(51, JobState.RUNNING, ("a100",), start=now - 500)
    with transaction(engine) as s:
        pred = trained_predictor(s)
        est = predict_runtimes(s, [pending, running], pred, now=now)
        predict_runtimes(s, [pending, running], pred, now=now + 60)  # unchanged: not recorded
        n = s.execute(select(func.count()).select_from(Prediction)).scalar_one()
    assert est[50].runtime_s == 104.0  # max of alice/train's recent runs
    assert est[51].runtime_s > 500  # outlived 104 s: re-predicted past its elapsed time
    assert est[51].runtime_s <= 3600  # never past the kill time
    assert n == 2


def test_prediction_accuracy_reports_runtime_and_start_errors(engine: Engine) -> None:
    with transaction(engine) as s:
        s.add(_row(1, start=1000, runtime=200, est=1300))
        s.add(_row(2, start=5000, runtime=100, est=None))
        record_prediction(s, job_id=1, made_at=900, predictor="envelope", runtime_s=400.0)
        record_prediction(s, job_id=1, made_at=950, predictor="envelope", runtime_s=10.0)
        record_prediction(s, job_id=2, made_at=4000, predictor="envelope", runtime_s=50.0)
        record_prediction(s, job_id=2, made_at=6000, predictor="envelope", runtime_s=1.0)  # late
        record_decision(s, job_id=1, decided_at=900, predicted_start=1100.0)
        record_decision(s, job_id=2, decided_at=4000, predicted_start=4900.0)
    with transaction(engine) as s:
        acc = prediction_accuracy(s)
    rt = acc["runtime"]["envelope"]
    assert rt["n"] == 2
    assert rt["median_abs_log"] == pytest.approx(math.log(2))
    assert rt["under_share"] == 0.5
    assert acc["start_abs_error_s"]["slurmopt"]["median"] == 100.0
    assert acc["start_abs_error_s"]["slurm"]["n"] == 1
    assert acc["start_abs_error_s"]["slurm"]["median"] == 300.0
