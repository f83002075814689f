"""Robust rolling z-score: flags slow drifts that a fixed threshold misses.

For one series, the points of the last ``recent_s`` seconds are compared with
a baseline made of the points before them (back to ``baseline_s``):

    z = 0.6745 * (median(recent) - median(baseline)) / MAD(baseline)

(0.6745 makes the MAD comparable with a standard deviation for normal data).
Median and MAD ignore outliers in the baseline, so one spike neither raises an
alert nor hides the next drift. A flat baseline (MAD = 0) uses a floor of
``min_scale`` (absolute) so that tiny changes of a constant metric do not score
infinity.

Temperature and power follow the load: by default the baseline keeps only the
points taken at a utilization close to the recent one (:func:`at_similar_load`),
so the detector flags "hotter at the same load" (a failing fan, dust, a
degrading GPU) and not "busier than an hour ago".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from slurmopt.telemetry.series import Series

MAD_TO_SIGMA = 0.6745


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    metrics: tuple[str, ...] = ("temp_c", "power_w")
    """Per-GPU metrics watched."""
    baseline_s: int = 3 * 3600
    recent_s: int = 900
    z_threshold: float = 4.0
    min_baseline_points: int = 12
    min_recent_points: int = 2
    min_scale: float = 0.5
    direction: str = "up"
    """``up``: only increases are anomalies (temperature, power); ``both``."""
    load_metric: str | None = "util_pct"
    """Compare like with like: the baseline keeps only the points taken at a load
    (this metric of the same subject) within ``load_band`` of the recent median
    load, so a GPU going from idle to busy is not a drift. None: no conditioning."""
    load_band: float = 15.0


@dataclass(frozen=True, slots=True)
class Score:
    z: float
    recent_median: float
    baseline_median: float
    mad: float
    n_baseline: int
    n_recent: int


def mad(values: Sequence[float], center: float) -> float:
    return statistics.median(abs(v - center) for v in values)


def robust_z(recent: Sequence[float], baseline: Sequence[float], *, min_scale: float) -> Score:
    """The robust z-score of ``recent`` against ``baseline`` (both non-empty)."""
    med = statistics.median(baseline)
    m = mad(baseline, med)
    rec = statistics.median(recent)
    scale = max(m, min_scale)
    return Score(MAD_TO_SIGMA * (rec - med) / scale, rec, med, m, len(baseline), len(recent))


def score_series(series: Series, now: int, cfg: AnomalyConfig) -> Score | None:
    """Score the newest part of ``series`` at ``now`` (None: not enough data)."""
    cut = now - cfg.recent_s
    start = now - cfg.baseline_s
    baseline = [v for at, v, _ in series if start <= at < cut]
    recent = [v for at, v, _ in series if cut <= at <= now]
    if len(baseline) < cfg.min_baseline_points or len(recent) < cfg.min_recent_points:
        return None
    return robust_z(recent, baseline, min_scale=cfg.min_scale)


def at_similar_load(series: Series, load: Series, now: int, cfg: AnomalyConfig) -> Series:
    """``series`` with its baseline points restricted to those taken at the recent load.

    Points without a load sample at the same time are dropped from the baseline;
    with no load series at all, ``series`` is returned unchanged.
    """
    if not load:
        return series
    by_time = {at: v for at, v, _ in load}
    cut = now - cfg.recent_s
    recent_load = [v for at, v, _ in load if cut <= at <= now]
    if not recent_load:
        return series
    ref = statistics.median(recent_load)
    return [
        p
        for p in series
        if p[0] >= cut or (p[0] in by_time and abs(by_time[p[0]] - ref) <= cfg.load_band)
    ]


def is_anomalous(score: Score, cfg: AnomalyConfig) -> bool:
    if cfg.direction == "up":
        return score.z > cfg.z_threshold
    return abs(score.z) > cfg.z_threshold
