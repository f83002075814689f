"""Runtime prediction from history (pure Python, no database).

Two predictors share one interface (``observe`` a finished job, ``predict`` a
new one):

* :class:`LastTwo`: the baseline of Tsafrir, Etsion and Feitelson (2007): the
  mean of the same user's last two runtimes, capped at the job's time limit;
  the time limit when the user has no history.
* :class:`Envelope`: finds the most specific recurring group with enough
  history (same user, job name and time request; same user and name; same
  user and request; same user, account and size; same user and size; the
  user; then the same resource shape from anyone) and predicts the *maximum*
  of that group's last nine runtimes, capped at the time limit: an upper-tail
  estimate that keeps under-prediction rare while following recent behaviour.
  A ratio-corrected mean (last two times a quantile of past actual/predicted
  ratios) was tried first and is dominated by it on KTH-SP2 (see
  docs/benchmarks.md).

Kill time stays the time limit: a prediction only feeds the optimizer's
availability profile. A job that outlives its prediction is re-predicted by
:func:`repredict` (the next larger runtime its group has shown, else double the
elapsed time, capped at the limit).

:func:`evaluate` replays a trace online: a job is predicted at its submit time
from jobs that had finished by then, which is what a live controller sees.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class JobInfo:
    """What a predictor may know about a job at submit time (and its runtime once done)."""

    user: str | None
    runtime_s: float = 0.0
    """Actual runtime (only read by ``observe``)."""
    time_limit_s: float | None = None
    name: str | None = None
    account: str | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    shape: Hashable = None
    """Anything else that identifies a kind of job (e.g. Alibaba's resource shape and QoS)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A runtime prediction and what it rests on."""

    runtime_s: float
    basis: str
    """``user+name(2)``, ``request``, ``none``..."""
    candidates: tuple[float, ...] = ()
    """Larger runtimes the group has shown, ascending (for :func:`repredict`)."""


class Predictor(Protocol):
    """Predict a job's runtime at submit time; learn from finished jobs."""

    name: str

    def predict(self, job: JobInfo) -> Estimate: ...

    def observe(self, job: JobInfo) -> None: ...


def _cap(value: float, limit: float | None) -> float:
    v = max(1.0, value)
    return min(v, limit) if limit else v


def _fallback(job: JobInfo, default_s: float) -> Estimate:
    if job.time_limit_s:
        return Estimate(float(job.time_limit_s), "request")
    return Estimate(default_s, "default")


class LastTwo:
    """Mean of the user's last two runtimes, capped at the limit (Tsafrir et al. 2007)."""

    name = "last-two"

    def __init__(self, *, default_s: float = 3600.0) -> None:
        self.default_s = default_s
        self.hist: dict[Hashable, deque[float]] = defaultdict(lambda: deque(maxlen=2))

    @staticmethod
    def _key(job: JobInfo) -> Hashable:
        # a trace without users (Alibaba pods): the resource shape stands in for the user
        return job.user if job.user is not None else ("shape", job.shape, job.cpus, job.gpus)

    def predict(self, job: JobInfo) -> Estimate:
        h = self.hist.get(self._key(job))
        if not h:
            return _fallback(job, self.default_s)
        return Estimate(_cap(sum(h) / len(h), job.time_limit_s), f"user({len(h)})")

    def observe(self, job: JobInfo) -> None:
        self.hist[self._key(job)].append(max(1.0, job.runtime_s))


@dataclass(frozen=True)
class EnvelopeConfig:
    """Knobs of :class:`Envelope` (chosen on KTH-SP2; see docs/benchmarks.md)."""

    keep: int = 9
    """Recent runtimes kept per group; the prediction is their maximum."""
    min_runs: int = 2
    """Runtimes a group needs to be used before a coarser group is tried."""


KeyFn = Callable[[JobInfo], Hashable]

KEYS: tuple[tuple[str, KeyFn], ...] = (
    (
        "user+name+request",
        lambda j: (j.user, "nr", j.name, j.time_limit_s) if j.user and j.name else None,
    ),
    ("user+name", lambda j: (j.user, "n", j.name) if j.user and j.name else None),
    ("user+request", lambda j: (j.user, "r", j.time_limit_s) if j.user else None),
    (
        "user+account+size",
        lambda j: (j.user, "a", j.account, j.cpus, j.gpus) if j.user and j.account else None,
    ),
    ("user+size", lambda j: (j.user, "c", j.cpus, j.gpus) if j.user else None),
    ("user", lambda j: (j.user, "u") if j.user else None),
    ("shape", lambda j: ("s", j.shape, j.time_limit_s, j.cpus, j.gpus)),
)
"""Recurring groups, most specific first. A key is None when the job lacks the field."""


class Envelope:
    """The maximum of the most specific recurring group's last runtimes, capped at the limit.

    The maximum of the last ``keep`` runs is an upper-tail estimate (about the
    keep/(keep+1) quantile of a stationary group), which keeps under-prediction
    rare; using the *recent* runs only lets it follow a user whose jobs get
    shorter. Groups are tried from the most specific (same user, job name and
    request) to the least (same resource shape from anyone).
    """

    name = "envelope"

    def __init__(self, config: EnvelopeConfig | None = None, *, default_s: float = 3600.0) -> None:
        self.cfg = config or EnvelopeConfig()
        self.default_s = default_s
        keep = self.cfg.keep
        self.runs: dict[Hashable, deque[float]] = defaultdict(lambda: deque(maxlen=keep))

    def _groups(self, job: JobInfo) -> list[tuple[str, deque[float]]]:
        out = []
        for label, fn in KEYS:
            key = fn(job)
            runs = self.runs.get(key) if key is not None else None
            if runs:
                out.append((label, runs))
        return out

    def predict(self, job: JobInfo) -> Estimate:
        groups = self._groups(job)
        if not groups:
            return _fallback(job, self.default_s)
        label, runs = next(((lb, r) for lb, r in groups if len(r) >= self.cfg.min_runs), groups[0])
        value = _cap(max(runs), job.time_limit_s)
        larger = sorted({_cap(r, job.time_limit_s) for _, g in groups for r in g if r > value})
        return Estimate(value, f"{label}({len(runs)})", tuple(larger))

    def observe(self, job: JobInfo) -> None:
        actual = max(1.0, job.runtime_s)
        for _label, fn in KEYS:
            key = fn(job)
            if key is not None:
                self.runs[key].append(actual)


def _quantile(values: Iterable[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return 1.0
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def repredict(estimate: Estimate, elapsed_s: float, time_limit_s: float | None) -> Estimate:
    """A new prediction for a job still running after ``elapsed_s``.

    The smallest larger runtime its group has shown, else double the elapsed
    time; capped at the time limit (the kill time never moves).
    """
    nxt = [c for c in estimate.candidates if c > elapsed_s]
    if nxt:
        return Estimate(_cap(nxt[0], time_limit_s), "repredict(next)", tuple(nxt[1:]))
    return Estimate(_cap(max(2.0 * elapsed_s, 1.0), time_limit_s), "repredict(double)")


# -- measurement ----------------------------------------------------------------


@dataclass
class Metrics:
    """Accuracy of one predictor over one replay."""

    predictor: str
    jobs: int = 0
    median_abs_log: float = math.nan
    """Median of |ln(predicted / actual)|."""
    under_share: float = math.nan
    """Share of jobs whose prediction was below the actual runtime."""
    with_history: float = math.nan
    """Share of jobs predicted from history (not from the request or a default)."""
    mean_ratio: float = math.nan
    """Mean predicted / actual (geometric)."""
    repredictions: float = math.nan
    """Mean re-predictions per under-predicted job until the prediction covered it."""
    errors: list[float] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, float | int | str]:
        return {
            "predictor": self.predictor,
            "jobs": self.jobs,
            "median_abs_log": round(self.median_abs_log, 3),
            "under_share": round(self.under_share, 3),
            "with_history": round(self.with_history, 3),
            "geo_mean_ratio": round(self.mean_ratio, 3),
            "repredictions": round(self.repredictions, 2),
        }


@dataclass(frozen=True, slots=True)
class ReplayJob:
    """A trace job for :func:`evaluate`: submit and end times plus what the predictor sees."""

    submit: float
    end: float
    info: JobInfo


def evaluate(
    jobs: Sequence[ReplayJob],
    predictor: Predictor,
    *,
    score_from: float | None = None,
    score_until: float | None = None,
) -> Metrics:
    """Replay ``jobs`` online: each is predicted at submit from jobs finished before it.

    Only jobs submitted in ``[score_from, score_until)`` are scored (all by
    default); the others still feed the predictor's history.
    """
    order = sorted(range(len(jobs)), key=lambda i: jobs[i].submit)
    done: list[tuple[float, int]] = []
    logs: list[float] = []
    under = hist = 0
    reps: list[int] = []
    for i in order:
        j = jobs[i]
        while done and done[0][0] <= j.submit:
            _, k = heapq.heappop(done)
            predictor.observe(jobs[k].info)
        est = predictor.predict(j.info)
        heapq.heappush(done, (j.end, i))
        if (score_from is not None and j.submit < score_from) or (
            score_until is not None and j.submit >= score_until
        ):
            continue
        actual = max(1.0, j.info.runtime_s)
        logs.append(math.log(est.runtime_s / actual))
        if est.runtime_s < actual:
            under += 1
            reps.append(_reps_needed(est, actual, j.info.time_limit_s))
        if est.basis not in ("request", "default"):
            hist += 1
    m = Metrics(predictor.name, jobs=len(logs), errors=logs)
    if logs:
        m.median_abs_log = statistics.median(abs(x) for x in logs)
        m.under_share = under / len(logs)
        m.with_history = hist / len(logs)
        m.mean_ratio = math.exp(statistics.fmean(logs))
        m.repredictions = statistics.fmean(reps) if reps else 0.0
    return m


def _reps_needed(est: Estimate, actual: float, limit: float | None) -> int:
    n = 0
    cur = est
    while cur.runtime_s < actual and n < 64:
        nxt = repredict(cur, cur.runtime_s, limit)
        if nxt.runtime_s <= cur.runtime_s:
            break  # at the limit: the job ran past it (trace records over-runs)
        cur = nxt
        n += 1
    return n
