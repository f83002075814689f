"""Observations (one metric of one subject at one time) and their rolling series.

Subjects are strings: ``node`` (host metrics, node state), ``node:gpuN`` (one
GPU), ``partition:NAME`` (queue state). The alert engine keeps the recent
series of every (subject, metric) in its state file, so windowed rules and the
anomaly detector work without a database; the history database, when present,
feeds them too (:func:`from_points`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from slurmopt.model import Snapshot
from slurmopt.telemetry.probe import ProbeResult
from slurmopt.telemetry.store import GpuPoint


@dataclass(frozen=True, slots=True)
class Observation:
    at: int
    subject: str
    metric: str
    value: float
    job_id: int | None = None
    note: str = ""


def gpu_subject(node: str, index: int) -> str:
    return f"{node}:gpu{index}"


def from_probe(probe: ProbeResult) -> list[Observation]:
    """GPU and host metrics of a probe (``lost`` is 1 for a lost GPU, else 0)."""
    at = int(probe.taken_at)
    out: list[Observation] = []
    for g in probe.gpus:
        s = gpu_subject(probe.node, g.index)
        out.append(Observation(at, s, "lost", 1.0 if g.lost else 0.0, g.job_id))
        if g.lost:
            continue
        unc = g.ecc_volatile_uncorrected
        if unc is None:
            unc = g.ecc_aggregate_uncorrected
        corr = g.ecc_volatile_corrected
        if corr is None:
            corr = g.ecc_aggregate_corrected
        values: dict[str, float | int | None] = {
            "util_pct": g.util_sm_pct,
            "temp_c": g.temperature_c,
            "power_w": g.power_w,
            "mem_used_mb": g.memory_used_mb,
            "ecc_uncorrected": unc,
            "ecc_corrected": corr,
        }
        for metric, v in values.items():
            if v is not None:
                out.append(Observation(at, s, metric, float(v), g.job_id))
    if probe.host is not None:
        out.append(Observation(at, probe.node, "load_1m", probe.host.load_1m))
        out.append(Observation(at, probe.node, "mem_pct", probe.host.memory_percent))
    return out


def from_points(points: Iterable[GpuPoint]) -> list[Observation]:
    """Observations from the history database's GPU samples."""
    out: list[Observation] = []
    for p in points:
        s = gpu_subject(p.node, p.gpu_index)
        for metric, v in (
            ("util_pct", p.util_pct),
            ("temp_c", p.temp_c),
            ("power_w", p.power_w),
            ("mem_used_mb", p.mem_used_mb),
        ):
            if v is not None:
                out.append(Observation(p.at, s, metric, float(v), p.job_id))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` (0..1) percentile by linear interpolation (``values`` non-empty)."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def from_snapshot(snap: Snapshot) -> list[Observation]:
    """Queue and node-state observations.

    ``partition:P`` ``wait_p90_s``: the 90th percentile of how long P's pending,
    unheld jobs have waited (since eligible, else submit); ``pending_jobs``.
    ``node`` ``unavailable``: 1 when down / drained / failing, with the reason.
    """
    at = snap.taken_at
    out: list[Observation] = []
    waits: dict[str, list[float]] = {p.name: [] for p in snap.partitions}
    for j in snap.pending:
        if j.held:
            continue
        since = j.eligible_time or j.submit_time
        if since is None or since > at:
            continue
        for p in j.partitions:
            waits.setdefault(p, []).append(float(at - since))
    for p, ws in waits.items():
        out.append(Observation(at, f"partition:{p}", "pending_jobs", float(len(ws))))
        if ws:
            out.append(Observation(at, f"partition:{p}", "wait_p90_s", percentile(ws, 0.9)))
    for n in snap.nodes:
        bad = not n.available
        note = f"{n.state.value}{'+' + '+'.join(sorted(n.flags)) if n.flags else ''}"
        if n.reason:
            note += f" ({n.reason})"
        out.append(Observation(at, n.name, "unavailable", 1.0 if bad else 0.0, note=note))
    return out


Series = list[tuple[int, float, int | None]]


class SeriesStore:
    """Rolling series per (subject, metric), kept in a JSON-able mapping.

    Args:
        data: the mapping to keep them in (part of the alert state file).
        max_age_s: points older than this (vs the newest time seen) are dropped.
        max_points: cap per series.
    """

    def __init__(
        self, data: MutableMapping[str, Any], *, max_age_s: int = 4 * 3600, max_points: int = 2000
    ) -> None:
        self.data = data
        self.max_age_s = max_age_s
        self.max_points = max_points

    @staticmethod
    def key(subject: str, metric: str) -> str:
        return f"{subject}|{metric}"

    def add(self, observations: Iterable[Observation]) -> None:
        newest = 0
        for o in observations:
            pts = self.data.setdefault(self.key(o.subject, o.metric), [])
            if pts and pts[-1][0] == o.at:
                pts[-1] = [o.at, o.value, o.job_id]
            else:
                pts.append([o.at, o.value, o.job_id])
            newest = max(newest, o.at)
        for k in list(self.data):
            pts = sorted(self.data[k], key=lambda p: p[0])
            if newest:
                pts = [p for p in pts if p[0] >= newest - self.max_age_s]
            if pts:
                self.data[k] = pts[-self.max_points :]
            else:
                del self.data[k]

    def series(self, subject: str, metric: str, since: int | None = None) -> Series:
        pts = self.data.get(self.key(subject, metric), [])
        return [(int(a), float(v), j) for a, v, j in pts if since is None or a >= since]

    def subjects(self, metric: str) -> list[str]:
        suffix = f"|{metric}"
        return sorted(k[: -len(suffix)] for k in self.data if k.endswith(suffix))


def latest(series: Series) -> tuple[int, float, int | None] | None:
    return series[-1] if series else None
