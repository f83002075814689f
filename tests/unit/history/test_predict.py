"""Runtime predictors: baseline, envelope, re-prediction, and the online replay."""

from __future__ import annotations

import pytest

from slurmopt.history.predict import (
    Envelope,
    EnvelopeConfig,
    Estimate,
    JobInfo,
    LastTwo,
    ReplayJob,
    evaluate,
    repredict,
)


def done(user: str, runtime: float, limit: float = 10_000, name: str | None = None) -> JobInfo:
    return JobInfo(user=user, runtime_s=runtime, time_limit_s=limit, name=name)


def test_last_two_is_mean_of_last_two_capped() -> None:
    p = LastTwo()
    assert p.predict(done("u", 0, limit=500)) == Estimate(500.0, "request")
    for r in (100, 200, 400):
        p.observe(done("u", r))
    assert p.predict(done("u", 0)).runtime_s == 300.0
    assert p.predict(done("u", 0, limit=250)).runtime_s == 250.0
    assert p.predict(done("v", 0, limit=42)).basis == "request"


def test_envelope_uses_most_specific_group_with_enough_runs() -> None:
    p = Envelope(EnvelopeConfig(keep=3, min_runs=2))
    p.observe(done("u", 100, name="a"))
    p.observe(done("u", 5000, name="b"))
    p.observe(done("u", 5200, name="b"))
    # name "a" has one run only: the user+request group (all three) answers
    est = p.predict(done("u", 0, name="a"))
    assert est.basis.startswith("user+request") and est.runtime_s == 5200.0
    p.observe(done("u", 120, name="a"))
    est = p.predict(done("u", 0, name="a"))
    assert est.basis == "user+name+request(2)" and est.runtime_s == 120.0
    # only the last `keep` runs count
    for r in (10, 11, 12):
        p.observe(done("u", r, name="a"))
    assert p.predict(done("u", 0, name="a")).runtime_s == 12.0


def test_envelope_caps_at_the_limit_and_falls_back_to_the_request() -> None:
    p = Envelope()
    assert p.predict(done("new", 0, limit=777)).runtime_s == 777.0
    p.observe(done("u", 9000))
    p.observe(done("u", 8000))
    assert p.predict(done("u", 0, limit=10_000)).runtime_s == 9000.0
    # same user, other request: falls to user+size, still capped at the new limit
    assert p.predict(done("u", 0, limit=600)).runtime_s == 600.0


def test_repredict_next_candidate_then_double_capped() -> None:
    est = Estimate(100.0, "x", candidates=(150.0, 400.0))
    nxt = repredict(est, 120, 1000)
    assert (nxt.runtime_s, nxt.candidates) == (150.0, (400.0,))
    assert repredict(nxt, 160, 1000).runtime_s == 400.0
    assert repredict(Estimate(100.0, "x"), 300, 1000).runtime_s == 600.0
    assert repredict(Estimate(100.0, "x"), 700, 1000).runtime_s == 1000.0  # kill time


def test_evaluate_uses_only_jobs_finished_before_submit() -> None:
    jobs = [
        ReplayJob(0, 1000, done("u", 1000)),  # still running when the next one is submitted
        ReplayJob(10, 110, done("u", 100)),
        ReplayJob(2000, 2100, done("u", 100)),
    ]
    m = evaluate(jobs, LastTwo())
    # job 2 has no finished history at t=10 -> request (10000); job 3 sees 1000 and 100
    expected = [10_000 / 1000, 10_000 / 100, 550 / 100]
    assert m.jobs == 3
    assert m.under_share == 0.0
    assert m.with_history == pytest.approx(1 / 3)
    import math

    assert m.errors == pytest.approx([math.log(x) for x in expected])
