"""Alert rules over observation series, with duration windows, dedup and recovery.

Every rule yields, for each subject it has fresh data about, a condition that
is true or false *now*. The engine turns conditions into events:

* a condition must hold continuously for the rule's ``for_s`` before it fires
  (``pending`` in the state);
* a firing alert is notified once (deduplicated), again only every
  ``renotify_s`` if that is set;
* when its condition is false again, a ``resolved`` event (the recovery notice)
  is sent and the alert is closed;
* a subject without fresh data (older than ``stale_s``) is not evaluated: its
  open alert stays open rather than "recovering" for lack of news.

Rules: ``gpu_idle`` (a GPU allocated to the same job with a mean SM
utilization at or under a threshold over a sliding window: not a whole-job
average), ``temperature``, ``gpu_lost``, ``ecc_uncorrected_growth``,
``ecc_corrected_growth``, ``partition_wait_p90``, ``node_unavailable``,
``gpu_foreign_process`` (:mod:`slurmopt.telemetry.security`) and
``anomaly_<metric>`` (robust rolling z-score, :mod:`slurmopt.telemetry.anomaly`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from slurmopt.telemetry.anomaly import AnomalyConfig, at_similar_load, is_anomalous, score_series
from slurmopt.telemetry.series import Observation, SeriesStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Alert rules (the config system's ``[alerts]`` table maps here)."""

    gpu_idle_util_pct: float = 5.0
    gpu_idle_window_s: int = 1800
    gpu_idle_coverage: float = 0.8
    """Share of the window the samples of the same job must span."""
    temperature_c: float = 85.0
    temperature_for_s: int = 300
    ecc_window_s: int = 3600
    ecc_corrected_growth: float = 1000.0
    wait_p90_s: float = 4 * 3600.0
    wait_for_s: int = 900
    node_unavailable_for_s: int = 600
    stale_s: int = 1800
    renotify_s: int = 0
    """0: notify a firing alert once."""
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)


@dataclass(frozen=True, slots=True)
class Condition:
    rule: str
    subject: str
    active: bool
    severity: str = "warning"
    message: str = ""
    for_s: int = 0


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A notification: an alert starts firing, repeats, or is resolved."""

    rule: str
    subject: str
    status: str
    """``firing`` or ``resolved``."""
    severity: str
    message: str
    at: int
    since: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "subject": self.subject,
            "status": self.status,
            "severity": self.severity,
            "message": self.message,
            "at": self.at,
            "since": self.since,
        }


def _fresh(pts: list[tuple[int, float, int | None]], now: int, stale_s: int) -> bool:
    return bool(pts) and pts[-1][0] >= now - stale_s


def rule_conditions(  # noqa: PLR0912  one branch per alert rule
    store: SeriesStore, now: int, cfg: AlertConfig, notes: MutableMapping[str, str]
) -> list[Condition]:
    """Every rule's condition for every subject with fresh data."""
    out: list[Condition] = []
    out += _gpu_idle(store, now, cfg)
    for s in store.subjects("temp_c"):
        pts = store.series(s, "temp_c")
        if _fresh(pts, now, cfg.stale_s):
            t = pts[-1][1]
            out.append(
                Condition(
                    "temperature",
                    s,
                    t >= cfg.temperature_c,
                    "warning",
                    f"{s} at {t:g}C (limit {cfg.temperature_c:g}C)",
                    cfg.temperature_for_s,
                )
            )
    for s in store.subjects("lost"):
        pts = store.series(s, "lost")
        if _fresh(pts, now, cfg.stale_s):
            out.append(
                Condition(
                    "gpu_lost",
                    s,
                    pts[-1][1] > 0,
                    "critical",
                    f"{s} fell off the bus (NVML: GPU is lost)",
                )
            )
    for metric, rule, limit, sev in (
        ("ecc_uncorrected", "ecc_uncorrected_growth", 1.0, "critical"),
        ("ecc_corrected", "ecc_corrected_growth", cfg.ecc_corrected_growth, "warning"),
    ):
        for s in store.subjects(metric):
            pts = store.series(s, metric, since=now - cfg.ecc_window_s)
            if not _fresh(pts, now, cfg.stale_s):
                continue
            grew = pts[-1][1] - min(v for _, v, _ in pts)
            out.append(
                Condition(
                    rule,
                    s,
                    grew >= limit,
                    sev,
                    f"{s} {metric} +{grew:g} in {cfg.ecc_window_s // 60} min",
                )
            )
    for s in store.subjects("pending_jobs"):
        pend = store.series(s, "pending_jobs")
        if not _fresh(pend, now, cfg.stale_s):
            continue
        wait = store.series(s, "wait_p90_s")
        current = wait[-1][1] if wait and wait[-1][0] == pend[-1][0] else 0.0
        out.append(
            Condition(
                "partition_wait_p90",
                s,
                current > cfg.wait_p90_s,
                "warning",
                f"{s} p90 wait {current / 60:.0f} min (limit {cfg.wait_p90_s / 60:.0f} min)",
                cfg.wait_for_s,
            )
        )
    for s in store.subjects("foreign_procs"):
        pts = store.series(s, "foreign_procs")
        if _fresh(pts, now, cfg.stale_s):
            note = notes.get(SeriesStore.key(s, "foreign_procs"), "")
            out.append(
                Condition(
                    "gpu_foreign_process",
                    s,
                    pts[-1][1] > 0,
                    "critical",
                    f"{s} used outside its Slurm allocation: {note}",
                )
            )
    for s in store.subjects("unavailable"):
        pts = store.series(s, "unavailable")
        if _fresh(pts, now, cfg.stale_s):
            note = notes.get(SeriesStore.key(s, "unavailable"), "")
            out.append(
                Condition(
                    "node_unavailable",
                    s,
                    pts[-1][1] > 0,
                    "warning",
                    f"node {s} unavailable: {note}",
                    cfg.node_unavailable_for_s,
                )
            )
    out += _anomalies(store, now, cfg)
    return out


def _gpu_idle(store: SeriesStore, now: int, cfg: AlertConfig) -> list[Condition]:
    out: list[Condition] = []
    win = cfg.gpu_idle_window_s
    for s in store.subjects("util_pct"):
        pts = store.series(s, "util_pct", since=now - win)
        if not _fresh(pts, now, cfg.stale_s):
            continue
        job = pts[-1][2]
        same = [p for p in pts if p[2] == job] if job is not None else []
        span = now - same[0][0] if same else 0
        if job is None or len(same) < 2 or span < cfg.gpu_idle_coverage * win:
            out.append(Condition("gpu_idle", s, False))
            continue
        mean = sum(v for _, v, _ in same) / len(same)
        out.append(
            Condition(
                "gpu_idle",
                s,
                mean <= cfg.gpu_idle_util_pct,
                "warning",
                f"{s} allocated to job {job} but idle: mean SM "
                f"{mean:.1f}% over the last {win // 60} min",
            )
        )
    return out


def _anomalies(store: SeriesStore, now: int, cfg: AlertConfig) -> list[Condition]:
    out: list[Condition] = []
    for metric in cfg.anomaly.metrics:
        for s in store.subjects(metric):
            pts = store.series(s, metric)
            if not _fresh(pts, now, cfg.stale_s):
                continue
            lm = cfg.anomaly.load_metric
            if lm is not None and lm != metric:
                pts = at_similar_load(pts, store.series(s, lm), now, cfg.anomaly)
            sc = score_series(pts, now, cfg.anomaly)
            if sc is None:
                continue
            out.append(
                Condition(
                    f"anomaly_{metric}",
                    s,
                    is_anomalous(sc, cfg.anomaly),
                    "info",
                    f"{s} {metric} drifted: median {sc.recent_median:g} vs "
                    f"baseline {sc.baseline_median:g} (robust z {sc.z:.1f})",
                )
            )
    return out


class AlertEngine:
    """Evaluates the rules and keeps the alert state (a JSON-able mapping).

    State layout: ``series`` (see :class:`SeriesStore`), ``notes``, ``pending``
    (key -> first time the condition held), ``open`` (key -> the firing alert).
    """

    def __init__(self, config: AlertConfig, state: MutableMapping[str, Any]) -> None:
        self.config = config
        self.state = state
        max_age = max(config.anomaly.baseline_s, config.gpu_idle_window_s, config.ecc_window_s)
        self.store = SeriesStore(state.setdefault("series", {}), max_age_s=max_age + 600)
        self.notes: MutableMapping[str, str] = state.setdefault("notes", {})
        self.pending: MutableMapping[str, int] = state.setdefault("pending", {})
        self.open: MutableMapping[str, dict[str, Any]] = state.setdefault("open", {})

    def observe(self, observations: Iterable[Observation]) -> None:
        obs = list(observations)
        for o in obs:
            if o.note:
                self.notes[SeriesStore.key(o.subject, o.metric)] = o.note
        self.store.add(obs)

    def evaluate(self, now: int) -> list[AlertEvent]:
        """Conditions -> firing / resolved events (updates the state)."""
        events: list[AlertEvent] = []
        for c in rule_conditions(self.store, now, self.config, self.notes):
            key = f"{c.rule}|{c.subject}"
            if c.active:
                first = self.pending.setdefault(key, now)
                if key not in self.open:
                    if now - first >= c.for_s:
                        self.open[key] = {
                            "since": now,
                            "severity": c.severity,
                            "message": c.message,
                            "notified_at": now,
                        }
                        events.append(
                            AlertEvent(c.rule, c.subject, "firing", c.severity, c.message, now, now)
                        )
                    continue
                alert = self.open[key]
                alert["message"] = c.message
                if self.config.renotify_s and now - alert["notified_at"] >= self.config.renotify_s:
                    alert["notified_at"] = now
                    events.append(
                        AlertEvent(
                            c.rule,
                            c.subject,
                            "firing",
                            c.severity,
                            c.message,
                            now,
                            int(alert["since"]),
                        )
                    )
            else:
                self.pending.pop(key, None)
                if key in self.open:
                    alert = self.open.pop(key)
                    events.append(
                        AlertEvent(
                            c.rule,
                            c.subject,
                            "resolved",
                            str(alert["severity"]),
                            f"recovered: {alert['message']}",
                            now,
                            int(alert["since"]),
                        )
                    )
        return events
