"""The format-independent trace model: :class:`TraceJob`, :class:`Trace`, :class:`Cleaning`.

See :mod:`slurmopt.sim.traces` for the conventions.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

log = logging.getLogger(__name__)

TraceFormat = Literal["swf", "alibaba-gpu", "csv"]


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a workload trace, format-independent."""

    job_id: int
    submit: int
    """Submit time, seconds from the trace origin."""
    runtime: int
    """Recorded runtime in seconds (0 when unknown or never started)."""
    wait: int | None = None
    """Recorded wait (start - submit); None when the job never started or it is unknown."""
    requested_time: int | None = None
    """The user's time limit in seconds, None when unknown."""
    cpus: float = 1.0
    """CPUs (SWF: allocated processors, else requested; Alibaba: cpu_milli / 1000)."""
    gpus: float = 0.0
    """GPUs; fractional for shared GPUs (Alibaba ``gpu_milli``)."""
    gpu_type: str | None = None
    """Required GPU type(s), ``|``-separated as in the Alibaba ``gpu_spec``; None: any."""
    memory_mb: float | None = None
    nodes: int | None = None
    """Nodes the job must use (1 for a pod); None: may spread over nodes."""
    user: str | None = None
    group: str | None = None
    queue: str | None = None
    """SWF queue number or Alibaba QoS class."""
    partition: str | None = None
    """SWF partition number (field 16) or the generic CSV's partition; None if unknown."""
    name: str = ""
    job_type: str | None = None
    """Workload class when the trace says (SWF executable number, CSV column)."""
    status: str = "unknown"
    extra: Mapping[str, str] = field(default_factory=dict)
    """Raw fields of the record that have no typed slot above."""

    @property
    def started(self) -> bool:
        """True when the trace records a start (a wait)."""
        return self.wait is not None

    @property
    def start(self) -> int | None:
        return None if self.wait is None else self.submit + self.wait

    @property
    def finish(self) -> int | None:
        return None if self.wait is None else self.submit + self.wait + self.runtime

    @property
    def gpus_whole(self) -> int:
        """Whole GPUs Slurm would allocate (a fractional request rounds up)."""
        return math.ceil(self.gpus - 1e-9) if self.gpus > 0 else 0

    @property
    def gpu_types(self) -> tuple[str, ...]:
        """Allowed GPU types (empty: any)."""
        return tuple(t for t in (self.gpu_type or "").split("|") if t)


@dataclass(frozen=True, slots=True)
class Cleaning:
    """Which records a reader keeps. Every rule is an explicit option.

    Attributes:
        drop_never_started: drop jobs with no recorded start (SWF wait -1 or
            cancelled before start; Alibaba pods without ``scheduled_time``).
        drop_zero_runtime: drop jobs whose recorded runtime is 0 (or unknown).
        over_request: jobs whose runtime exceeds the requested time: ``keep``
            them as recorded, ``clip`` the runtime to the request (what a
            strict time limit would have done), or ``drop`` them.
        drop_failed: drop jobs whose status says failed / cancelled.
    """

    drop_never_started: bool = True
    drop_zero_runtime: bool = True
    over_request: Literal["keep", "clip", "drop"] = "keep"
    drop_failed: bool = False

    @classmethod
    def none(cls) -> Cleaning:
        """Keep every record exactly as written (conformance figures)."""
        return cls(drop_never_started=False, drop_zero_runtime=False, over_request="keep")

    def apply(self, job: TraceJob) -> tuple[TraceJob | None, str | None]:
        """Return the job to keep (possibly clipped) or None with the reason."""
        if self.drop_never_started and not job.started:
            return None, "never_started"
        if self.drop_zero_runtime and job.runtime <= 0:
            return None, "zero_runtime"
        if self.drop_failed and job.status in ("failed", "cancelled"):
            return None, "failed"
        rq = job.requested_time
        if rq is not None and job.runtime > rq:
            if self.over_request == "drop":
                return None, "over_request"
            if self.over_request == "clip":
                return replace(job, runtime=rq), None
        return job, None


@dataclass(frozen=True, slots=True)
class Trace:
    """A trace: jobs sorted by (submit, job_id), and what the file says about itself."""

    name: str
    format: str
    jobs: tuple[TraceJob, ...]
    header: Mapping[str, str] = field(default_factory=dict)
    """SWF header comments (``MaxNodes`` -> ``"100"``); empty for CSVs."""
    max_nodes: int | None = None
    max_procs: int | None = None
    unix_start: int | None = None
    records: int = 0
    """Records read before cleaning."""
    dropped: Mapping[str, int] = field(default_factory=dict)
    """Records dropped by cleaning, per reason."""

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[TraceJob]:
        return iter(self.jobs)


def finish_trace(
    name: str,
    fmt: str,
    raw: Iterable[TraceJob],
    cleaning: Cleaning,
    *,
    header: Mapping[str, str] | None = None,
    max_nodes: int | None = None,
    max_procs: int | None = None,
    unix_start: int | None = None,
) -> Trace:
    kept: list[TraceJob] = []
    dropped: Counter[str] = Counter()
    n = 0
    for job in raw:
        n += 1
        out, why = cleaning.apply(job)
        if out is None:
            dropped[why or "?"] += 1
        else:
            kept.append(out)
    kept.sort(key=lambda j: (j.submit, j.job_id))
    if dropped:
        log.info("%s: kept %d of %d records, dropped %s", name, len(kept), n, dict(dropped))
    return Trace(
        name=name,
        format=fmt,
        jobs=tuple(kept),
        records=n,
        dropped=dict(dropped),
        header=dict(header or {}),
        max_nodes=max_nodes,
        max_procs=max_procs,
        unix_start=unix_start,
    )
