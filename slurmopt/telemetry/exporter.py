"""Prometheus metrics (prometheus-client): queue, free GPUs, predicted wait, GPUs, controller.

One custom collector reads its sources at most every ``refresh_s`` (a scrape
between two refreshes gets the cached values, so Prometheus cannot hammer
slurmctld). A source that fails keeps its last good values out of the answer
(no stale series), sets ``slurmopt_exporter_source_up{source}`` to 0 and counts
``slurmopt_exporter_errors_total{source}``.

Predicted wait: with the optimizer available, the mean and the maximum of
(predicted start - now) of each partition's pending jobs from list scheduling
of the current queue (:class:`slurmopt.optimize.problem.Problem`, ``source="slurmopt"``);
if building the problem fails, Slurm's own backfill estimates (the pending
jobs' ``start_time``, ``source="slurm"``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from slurmopt.errors import SlurmoptError
from slurmopt.model import Snapshot
from slurmopt.telemetry.store import GpuPoint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ControllerStats:
    runs: int = 0
    errors: int = 0
    moves_applied: int = 0
    last_started_at: int | None = None
    last_wall_s: float | None = None
    decisions: Mapping[str, int] = field(default_factory=dict)
    """outcome -> count."""
    gain_applied_s: float = 0.0
    refusals: Mapping[str, int] = field(default_factory=dict)
    """component -> inputs refused for a trust reason (docs/security.md)."""


def predicted_waits(snap: Snapshot) -> tuple[str, dict[str, list[float]]]:
    """(source, partition -> predicted remaining waits of its pending jobs)."""
    now = snap.taken_at
    try:
        from slurmopt.optimize.problem import Problem

        problem = Problem.build(snap)
        plan = problem.plan_from(problem.current_genes(), solver="exporter")
        out: dict[str, list[float]] = {}
        for pl in plan.placements:
            out.setdefault(pl.partition, []).append(max(0.0, pl.predicted_start - now))
        return "slurmopt", out
    except Exception as exc:  # the optimizer must not take the exporter down
        log.warning("optimizer prediction unavailable (%s): using Slurm's estimates", exc)
    out = {}
    for j in snap.pending:
        if j.start_time and j.start_time > 0:
            for p in j.partitions:
                out.setdefault(p, []).append(float(max(0, j.start_time - now)))
    return "slurm", out


@dataclass
class Sources:
    """Where the exporter reads; None: not available."""

    snapshot: Callable[[], Snapshot] | None = None
    points: Callable[[int], list[GpuPoint]] | None = None
    """GPU samples since an epoch time."""
    local_points: Callable[[], list[GpuPoint]] | None = None
    """GPU samples of a probe of this node, taken at each refresh (``--probe``)."""
    controller: Callable[[], ControllerStats] | None = None
    predict: Callable[[Snapshot], tuple[str, dict[str, list[float]]]] = predicted_waits


class SlurmoptCollector(Collector):
    """The collector registered by ``slurmopt exporter``."""

    def __init__(
        self,
        sources: Sources,
        *,
        refresh_s: float = 30.0,
        gpu_max_age_s: int = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = sources
        self.refresh_s = refresh_s
        self.gpu_max_age_s = gpu_max_age_s
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: list[Metric] = []
        self._at = -1e18
        self.errors: dict[str, int] = {}
        self.up: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self.clock() - self._at >= self.refresh_s:
                self._cache = self._build()
                self._at = self.clock()
            yield from self._cache
        up = GaugeMetricFamily(
            "slurmopt_exporter_source_up", "1 if the source answered", labels=["source"]
        )
        err = CounterMetricFamily(
            "slurmopt_exporter_errors", "Failed source reads", labels=["source"]
        )
        for s, v in sorted(self.up.items()):
            up.add_metric([s], v)
            err.add_metric([s], self.errors.get(s, 0))
        yield up
        yield err

    def _read(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            value = fn()
        except (SlurmoptError, OSError, ValueError, RuntimeError) as exc:
            log.warning("exporter source %s failed: %s", name, exc)
            self.errors[name] = self.errors.get(name, 0) + 1
            self.up[name] = 0
            return None
        self.up[name] = 1
        return value

    def _build(self) -> list[Metric]:
        out: list[Metric] = []
        src = self.sources
        if src.snapshot is not None:
            snap = self._read("slurm", src.snapshot)
            if snap is not None:
                out += queue_metrics(snap)
                waits = self._read("prediction", lambda: src.predict(snap))
                if waits is not None:
                    out += wait_metrics(*waits)
        pts: list[GpuPoint] = []
        if src.points is not None:
            since = int(self.clock()) - self.gpu_max_age_s
            pts += self._read("history", lambda: src.points(since)) or []  # type: ignore[misc]
        if src.local_points is not None:
            pts += self._read("probe", src.local_points) or []
        if src.points is not None or src.local_points is not None:
            out += gpu_metrics(pts)
        if src.controller is not None:
            stats = self._read("controller", src.controller)
            if stats is not None:
                out += controller_metrics(stats)
        return out


def queue_metrics(snap: Snapshot) -> list[Metric]:
    jobs = GaugeMetricFamily(
        "slurmopt_partition_jobs", "Jobs per partition and state", labels=["partition", "state"]
    )
    gpus = GaugeMetricFamily(
        "slurmopt_partition_gpus",
        "GPUs requested (pending) or allocated (running) per partition",
        labels=["partition", "state"],
    )
    counts: dict[tuple[str, str], list[int]] = {}
    for part in snap.partitions:
        counts[(part.name, "pending")] = [0, 0]
        counts[(part.name, "running")] = [0, 0]
    for j in snap.jobs:
        if j.pending:
            for p in j.partitions:
                c = counts.setdefault((p, "pending"), [0, 0])
                c[0] += 1
                c[1] += j.request.gpus_total()
        elif j.running:
            for p in j.partitions[:1]:
                c = counts.setdefault((p, "running"), [0, 0])
                c[0] += 1
                c[1] += sum(j.gpus_alloc.values()) or j.request.gpus_total()
    for (name, st), (n, g) in sorted(counts.items()):
        jobs.add_metric([name, st], n)
        gpus.add_metric([name, st], g)
    free = GaugeMetricFamily(
        "slurmopt_free_gpus", "Free GPUs on available nodes, by type", labels=["gpu_type"]
    )
    by_type: dict[str, int] = {}
    for node in snap.nodes:
        for t, n in node.gpu_free.items():
            by_type[t] = by_type.get(t, 0) + (n if node.available else 0)
    for t, n in sorted(by_type.items()):
        free.add_metric([t or "untyped"], n)
    return [jobs, gpus, free]


def wait_metrics(source: str, waits: Mapping[str, list[float]]) -> list[Metric]:
    mean = GaugeMetricFamily(
        "slurmopt_partition_predicted_wait_seconds",
        "Mean predicted remaining wait of the partition's pending jobs",
        labels=["partition", "source"],
    )
    mx = GaugeMetricFamily(
        "slurmopt_partition_predicted_wait_max_seconds",
        "Longest predicted remaining wait of the partition's pending jobs",
        labels=["partition", "source"],
    )
    for p, ws in sorted(waits.items()):
        if ws:
            mean.add_metric([p, source], sum(ws) / len(ws))
            mx.add_metric([p, source], max(ws))
    return [mean, mx]


def gpu_metrics(points: list[GpuPoint]) -> list[Metric]:
    latest: dict[tuple[str, int], GpuPoint] = {}
    for p in points:
        key = (p.node, p.gpu_index)
        if key not in latest or p.at >= latest[key].at:
            latest[key] = p
    fams = {
        "util_pct": GaugeMetricFamily(
            "slurmopt_gpu_utilization_percent", "SM utilization", labels=["node", "gpu"]
        ),
        "mem_used_mb": GaugeMetricFamily(
            "slurmopt_gpu_memory_used_mib", "GPU memory used", labels=["node", "gpu"]
        ),
        "temp_c": GaugeMetricFamily(
            "slurmopt_gpu_temperature_celsius", "GPU temperature", labels=["node", "gpu"]
        ),
        "power_w": GaugeMetricFamily(
            "slurmopt_gpu_power_watts", "GPU power draw", labels=["node", "gpu"]
        ),
    }
    for (node, idx), p in sorted(latest.items()):
        for attr, fam in fams.items():
            v = getattr(p, attr)
            if v is not None:
                fam.add_metric([node, str(idx)], float(v))
    return list(fams.values())


def controller_metrics(s: ControllerStats) -> list[Metric]:
    out: list[Metric] = [
        CounterMetricFamily("slurmopt_controller_runs", "Controller cycles", value=s.runs),
        CounterMetricFamily("slurmopt_controller_errors", "Cycles that failed", value=s.errors),
        CounterMetricFamily(
            "slurmopt_controller_moves_applied", "Moves applied", value=s.moves_applied
        ),
        CounterMetricFamily(
            "slurmopt_controller_gain_seconds",
            "Predicted gain of applied decisions",
            value=s.gain_applied_s,
        ),
    ]
    dec = CounterMetricFamily(
        "slurmopt_controller_decisions", "Decisions by outcome", labels=["outcome"]
    )
    for outcome, n in sorted(s.decisions.items()):
        dec.add_metric([outcome or "unknown"], n)
    out.append(dec)
    ref = CounterMetricFamily(
        "slurmopt_trust_refusals",
        "Spool files, records and claims refused for a trust or size reason",
        labels=["component"],
    )
    for component in ("ingest", "controller"):
        ref.add_metric([component], s.refusals.get(component, 0))
    out.append(ref)
    if s.last_wall_s is not None:
        out.append(
            GaugeMetricFamily(
                "slurmopt_controller_cycle_seconds",
                "Duration of the last cycle",
                value=s.last_wall_s,
            )
        )
    if s.last_started_at is not None:
        out.append(
            GaugeMetricFamily(
                "slurmopt_controller_last_cycle_timestamp_seconds",
                "Start of the last cycle",
                value=s.last_started_at,
            )
        )
    return out


def controller_stats_from_db(engine: Any) -> ControllerStats:
    """Controller figures from the history database's ``controller_runs`` and ``decisions``.

    Raises:
        slurmopt.history.db.DatabaseError: unreachable database.
    """
    from sqlalchemy import func, select

    from slurmopt.history import db, orm

    def work(session: Any) -> ControllerStats:
        r = orm.ControllerRun
        runs, errors, moves = session.execute(
            select(
                func.count(r.id), func.count(r.error), func.coalesce(func.sum(r.moves_applied), 0)
            )
        ).one()
        last = session.execute(
            select(r.started_at, r.wall_s).order_by(r.started_at.desc()).limit(1)
        ).first()
        d = orm.Decision
        outcomes = dict(
            session.execute(select(d.outcome, func.count(d.id)).group_by(d.outcome)).all()
        )
        gain = session.scalar(
            select(func.coalesce(func.sum(d.gain_s), 0.0)).where(d.applied.is_(True))
        )
        t = orm.TrustRefusal
        refused = dict(
            session.execute(select(t.component, func.count(t.id)).group_by(t.component)).all()
        )
        return ControllerStats(
            runs=int(runs),
            errors=int(errors),
            moves_applied=int(moves),
            last_started_at=None if last is None else int(last[0]),
            last_wall_s=None if last is None else float(last[1]),
            decisions={str(k): int(v) for k, v in outcomes.items()},
            gain_applied_s=float(gain or 0.0),
            refusals={str(k): int(v) for k, v in refused.items()},
        )

    return db.with_retry(engine, work)
