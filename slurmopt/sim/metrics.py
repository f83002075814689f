"""Scheduling metrics with the field's definitions.

* wait = start - submit;
* JCT (job completion time, also "response time" / "turnaround") = finish - submit;
* bounded slowdown = max(1, (wait + run) / max(run, tau)), tau = 10 s
  (Feitelson et al., "Theory and practice in parallel job scheduling", 1997);
* makespan = last finish - first submit;
* utilization = sum(cpus x run) / (total CPUs x makespan); GPU utilization the
  same with allocated GPUs (and, separately, the GPU fraction actually asked
  for, which differs when fractional requests are rounded up);
* mean, median and p95 (numpy's linear interpolation between order statistics);
* the zero-wait lower bound of mean JCT: every job alone on its fastest allowed
  partition (wait 0, the shortest runtime it could have), and the ratio of the
  measured mean JCT to it.

The same code scores the recorded trace (:func:`recorded_outcomes`) and the
simulator's replay, so conformance with published figures checks both.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from slurmopt.sim.traces import Trace

BSLD_TAU_S = 10.0
"""The bounded-slowdown threshold (seconds): runs shorter than this count as this long."""


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What happened to one job (recorded, or in a replay)."""

    job_id: int
    submit: float
    start: float
    finish: float
    cpus: float = 1.0
    gpus: float = 0.0
    """GPUs allocated (whole GPUs in the simulator)."""
    gpus_asked: float = 0.0
    """GPUs the trace asked for (may be fractional)."""
    partition: str = ""
    job_class: str = ""
    best_runtime: float | None = None
    """Shortest runtime on any allowed partition (for the lower bound); None: this run."""

    @property
    def wait(self) -> float:
        return self.start - self.submit

    @property
    def runtime(self) -> float:
        return self.finish - self.start

    @property
    def jct(self) -> float:
        return self.finish - self.submit

    @property
    def bounded_slowdown(self) -> float:
        return bounded_slowdown(self.wait, self.runtime)


def bounded_slowdown(wait: float, run: float, tau: float = BSLD_TAU_S) -> float:
    """max(1, (wait + run) / max(run, tau))."""
    return max(1.0, (wait + run) / max(run, tau))


@dataclass(frozen=True, slots=True)
class Stat:
    """Mean, median and 95th percentile of one quantity."""

    mean: float
    median: float
    p95: float

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray[Any, Any]) -> Stat:
        arr = np.asarray(values, dtype=float)
        if arr.size == 0:
            return cls(math.nan, math.nan, math.nan)
        med, p95 = np.percentile(arr, [50.0, 95.0])
        return cls(float(arr.mean()), float(med), float(p95))


@dataclass(frozen=True, slots=True)
class Metrics:
    """The summary of one run."""

    jobs: int
    wait: Stat
    jct: Stat
    bounded_slowdown: Stat
    makespan: float
    utilization: float
    gpu_utilization: float
    gpu_utilization_asked: float
    lower_bound_jct: float
    """Mean zero-wait JCT (each job alone on its fastest allowed partition)."""
    ratio_to_lower_bound: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    outcomes: Sequence[JobOutcome], *, total_cpus: float = 0.0, total_gpus: float = 0.0
) -> Metrics:
    """Summarize outcomes; capacities of 0 give NaN utilizations."""
    n = len(outcomes)
    if n == 0:
        nan = Stat(math.nan, math.nan, math.nan)
        return Metrics(0, nan, nan, nan, 0.0, math.nan, math.nan, math.nan, math.nan, math.nan)
    submit = np.fromiter((o.submit for o in outcomes), float, n)
    start = np.fromiter((o.start for o in outcomes), float, n)
    finish = np.fromiter((o.finish for o in outcomes), float, n)
    run = finish - start
    wait = start - submit
    jct = finish - submit
    bsld = np.maximum(1.0, (wait + run) / np.maximum(run, BSLD_TAU_S))
    best = np.fromiter(
        (o.best_runtime if o.best_runtime is not None else o.finish - o.start for o in outcomes),
        float,
        n,
    )
    cpus = np.fromiter((o.cpus for o in outcomes), float, n)
    gpus = np.fromiter((o.gpus for o in outcomes), float, n)
    asked = np.fromiter((o.gpus_asked for o in outcomes), float, n)
    # Each reduction converted on its own, through the np.max / np.min functions:
    # NumPy's stubs type ``ndarray.max()`` differently across 2.x releases (Any, a
    # scalar, a scalar | array union; under NumPy 2.5.5 no overload accepts a call
    # without arguments), and float() accepts every result of the functions.
    # Checked with mypy --strict under NumPy 2.4.6 (Python 3.11) and 2.5.5 (3.13).
    makespan = float(np.max(finish)) - float(np.min(submit))
    lb = float(best.mean())

    def util(used: np.ndarray[Any, Any], cap: float) -> float:
        if cap <= 0 or makespan <= 0:
            return math.nan
        return float((used * run).sum() / (cap * makespan))

    mean_jct = float(jct.mean())
    return Metrics(
        jobs=n,
        wait=Stat.of(wait),
        jct=Stat.of(jct),
        bounded_slowdown=Stat.of(bsld),
        makespan=makespan,
        utilization=util(cpus, total_cpus),
        gpu_utilization=util(gpus, total_gpus),
        gpu_utilization_asked=util(asked, total_gpus),
        lower_bound_jct=lb,
        ratio_to_lower_bound=mean_jct / lb if lb > 0 else math.nan,
    )


def summarize_by(
    outcomes: Iterable[JobOutcome],
    key: Callable[[JobOutcome], str] = lambda o: o.job_class,
    **capacity: float,
) -> dict[str, Metrics]:
    """Metrics per class (``key`` of each outcome), e.g. per job class or GPU count."""
    groups: dict[str, list[JobOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[key(o)].append(o)
    return {k: summarize(v, **capacity) for k, v in sorted(groups.items())}


def recorded_outcomes(trace: Trace) -> list[JobOutcome]:
    """Outcomes as the trace recorded them (jobs without a recorded start are skipped).

    Runs shorter than zero are clamped to zero. Every job's best runtime is its
    recorded runtime (the recording knows no other machine).
    """
    out: list[JobOutcome] = []
    for j in trace.jobs:
        if j.wait is None:
            continue
        start = j.submit + max(j.wait, 0)
        out.append(
            JobOutcome(
                job_id=j.job_id,
                submit=float(j.submit),
                start=float(start),
                finish=float(start + max(j.runtime, 0)),
                cpus=j.cpus,
                gpus=float(j.gpus_whole),
                gpus_asked=j.gpus,
                partition=j.partition or "",
                job_class=j.job_type or "",
            )
        )
    return out
