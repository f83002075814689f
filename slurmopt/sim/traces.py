"""Workload trace readers: SWF v2.2, the Alibaba GPU 2023 CSVs, and a generic CSV.

Every reader returns a :class:`Trace`: a tuple of :class:`TraceJob` in submit
order plus what the file says about itself. The API is stable (the history
package imports it for runtime-prediction measurements).

Conventions (see ``docs/simulator.md``):

* times are seconds relative to the trace's own origin (SWF submit times are
  already relative; Alibaba ``creation_time`` too); ``Trace.unix_start`` holds
  the SWF ``UnixStartTime`` when the header has one;
* ``-1`` in SWF (and an empty cell in the CSVs) means *unknown* and becomes
  ``None`` (``runtime`` is the exception: an unknown runtime is ``0`` and the
  job is marked as never started, see :class:`Cleaning`);
* ``gpus`` is a float: the Alibaba trace shares GPUs between pods
  (``num_gpu == 1`` with ``gpu_milli < 1000``), recorded here as the fraction
  (0.46). Slurm allocates whole GPUs (no MPS / shards in this model), so the
  simulator rounds a fractional request *up* to one whole GPU
  (:attr:`TraceJob.gpus_whole`); the fraction is kept for GPU-utilization
  accounting and for other uses;
* ``nodes`` is 1 for an Alibaba pod (a pod never spans nodes) and ``None`` for
  SWF jobs (processors may be spread over any number of nodes).

Cleaning rules are explicit (:class:`Cleaning`). Defaults: drop jobs that never
started, drop zero-runtime jobs, keep jobs that ran longer than they requested
(their recorded runtime is what happened). ``Cleaning.none()`` keeps every
record, which is what the conformance figures use.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

TraceFormat = Literal["swf", "alibaba-gpu", "csv"]
FORMATS: tuple[str, ...] = ("swf", "alibaba-gpu", "csv")

SWF_FIELDS: tuple[str, ...] = (
    "job_number",
    "submit_time",
    "wait_time",
    "run_time",
    "allocated_processors",
    "average_cpu_time",
    "used_memory_kb",
    "requested_processors",
    "requested_time",
    "requested_memory_kb",
    "status",
    "user_id",
    "group_id",
    "executable_number",
    "queue_number",
    "partition_number",
    "preceding_job_number",
    "think_time",
)
"""The 18 SWF v2.2 fields, in file order (``Trace.jobs[i].extra`` keeps them all)."""

SWF_STATUS = {0: "failed", 1: "completed", 2: "partial", 3: "partial-last", 4: "partial-failed"}
SWF_STATUS_CANCELLED = 5


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


def _finish(
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


# -- SWF -------------------------------------------------------------------------


def parse_swf_header(lines: Iterable[str]) -> dict[str, str]:
    """Parse ``; Key: value`` header comments; continuation lines are appended."""
    header: dict[str, str] = {}
    last: str | None = None
    for line in lines:
        body = line.lstrip(";").strip()
        if not body:
            continue
        key, sep, value = body.partition(":")
        if sep and key and " " not in key.strip():
            last = key.strip()
            header[last] = value.strip()
        elif last is not None:
            header[last] = (header[last] + " " + body).strip()
    return header


def _opt(v: int) -> int | None:
    return None if v < 0 else v


def swf_record(values: list[int]) -> TraceJob:
    """One SWF data line (18 integers) as a :class:`TraceJob`."""
    jid, submit, wait, run, procs = values[0:5]
    rprocs, rtime, rmem, status, uid, gid, exe, queue, part = values[7:16]
    never = wait < 0 or (status == SWF_STATUS_CANCELLED and run <= 0)
    cpus = procs if procs > 0 else rprocs
    extra = {k: str(v) for k, v in zip(SWF_FIELDS, values, strict=True)}
    return TraceJob(
        job_id=jid,
        submit=max(submit, 0),
        runtime=max(run, 0),
        wait=None if never else wait,
        requested_time=_opt(rtime) if rtime != 0 else None,
        cpus=float(max(cpus, 1)),
        gpus=0.0,
        memory_mb=None if rmem < 0 else rmem * max(cpus, 1) / 1024.0,
        nodes=None,
        user=None if uid < 0 else str(uid),
        group=None if gid < 0 else str(gid),
        queue=None if queue < 0 else str(queue),
        partition=None if part < 0 else str(part),
        name=f"job{jid}",
        job_type=None if exe < 0 else f"app{exe}",
        status="cancelled" if status == SWF_STATUS_CANCELLED else SWF_STATUS.get(status, "unknown"),
        extra=extra,
    )


def read_swf(path: str | Path, *, cleaning: Cleaning | None = None) -> Trace:
    """Read a Standard Workload Format (v2.2) file.

    All 18 fields are read (kept raw in ``extra``); -1 means unknown. The
    partition comes from field 16, the requested time from field 9, the
    requested memory (KB per processor, field 10) becomes MiB for the job.
    Header comments are parsed; ``MaxNodes`` / ``MaxProcs`` are typed.

    Raises:
        ValueError: a data line does not hold 18 integers.
    """
    cleaning = cleaning if cleaning is not None else Cleaning()
    path = Path(path)
    head: list[str] = []
    jobs: list[TraceJob] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith(";"):
                head.append(line)
                continue
            parts = line.split()
            if not parts:
                continue
            if len(parts) != len(SWF_FIELDS):
                raise ValueError(f"{path}:{lineno}: {len(parts)} fields, SWF has 18")
            try:
                values = [int(float(p)) if "." in p else int(p) for p in parts]
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: not a number: {exc}") from exc
            jobs.append(swf_record(values))
    header = parse_swf_header(head)

    def _int(key: str) -> int | None:
        try:
            v = int(header[key].split()[0])
        except (KeyError, ValueError, IndexError):
            return None
        return v if v >= 0 else None

    return _finish(
        path.name,
        "swf",
        jobs,
        cleaning,
        header=header,
        max_nodes=_int("MaxNodes"),
        max_procs=_int("MaxProcs"),
        unix_start=_int("UnixStartTime"),
    )


# -- Alibaba GPU 2023 ------------------------------------------------------------

ALIBABA_POD_COLUMNS = (
    "name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec",
    "qos", "pod_phase", "creation_time", "deletion_time", "scheduled_time",
)  # fmt: skip
ALIBABA_NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")


@dataclass(frozen=True, slots=True)
class AlibabaNode:
    """One node of the Alibaba GPU 2023 node list."""

    name: str
    cpus: float
    memory_mb: int
    gpus: int
    model: str | None
    """GPU model (P100, T4, V100M16, V100M32, A10, G2, G3); None for CPU nodes."""


def _check_columns(path: Path, got: Sequence[str] | None, want: tuple[str, ...]) -> None:
    missing = [c for c in want if c not in (got or [])]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (has {list(got or [])})")


def _pod_index(name: str, fallback: int) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else fallback


def read_alibaba_pods(path: str | Path, *, cleaning: Cleaning | None = None) -> Trace:
    """Read ``openb_pod_list_*.csv`` of the Alibaba GPU 2023 trace.

    Mapping: submit = ``creation_time``; wait = ``scheduled_time`` -
    ``creation_time`` (None when never scheduled); runtime = ``deletion_time``
    - ``scheduled_time`` (pods still running at the end of the trace end at
    its last timestamp); CPUs = ``cpu_milli`` / 1000; GPUs = ``num_gpu``, or
    ``gpu_milli`` / 1000 for a shared single GPU; gpu_type = ``gpu_spec``;
    queue = ``qos``; status = ``pod_phase`` lowercased; one node per pod. The
    trace has no time limits and no users.

    Raises:
        ValueError: a column is missing or a number is malformed.
    """
    cleaning = cleaning if cleaning is not None else Cleaning()
    path = Path(path)
    jobs: list[TraceJob] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        _check_columns(path, reader.fieldnames, ALIBABA_POD_COLUMNS)
        for i, row in enumerate(reader):
            created = int(row["creation_time"])
            sched = row["scheduled_time"].strip()
            deleted = row["deletion_time"].strip()
            start = int(sched) if sched else None
            end = int(deleted) if deleted else None
            ngpu = int(row["num_gpu"] or 0)
            milli = int(row["gpu_milli"] or 0)
            gpus = milli / 1000.0 if ngpu == 1 and 0 < milli < 1000 else float(ngpu)
            runtime = max(0, end - start) if start is not None and end is not None else 0
            extra = {k: v for k, v in row.items() if k not in ALIBABA_POD_COLUMNS and k}
            extra["gpu_milli"] = row["gpu_milli"]
            jobs.append(
                TraceJob(
                    job_id=_pod_index(row["name"], i),
                    submit=created,
                    runtime=runtime,
                    wait=None if start is None else max(0, start - created),
                    requested_time=None,
                    cpus=int(row["cpu_milli"] or 0) / 1000.0,
                    gpus=gpus,
                    gpu_type=row["gpu_spec"].strip() or None,
                    memory_mb=float(row["memory_mib"]) if row["memory_mib"] else None,
                    nodes=1,
                    queue=row["qos"] or None,
                    name=row["name"],
                    status=row["pod_phase"].lower() or "unknown",
                    extra=extra,
                )
            )
    return _finish(path.name, "alibaba-gpu", jobs, cleaning)


def read_alibaba_nodes(path: str | Path) -> tuple[AlibabaNode, ...]:
    """Read ``openb_node_list_*.csv`` (``sn, cpu_milli, memory_mib, gpu, model``).

    Raises:
        ValueError: a column is missing or a number is malformed.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        _check_columns(path, reader.fieldnames, ALIBABA_NODE_COLUMNS)
        return tuple(
            AlibabaNode(
                name=row["sn"],
                cpus=int(row["cpu_milli"]) / 1000.0,
                memory_mb=int(row["memory_mib"]),
                gpus=int(row["gpu"] or 0),
                model=row["model"].strip() or None,
            )
            for row in reader
        )


# -- generic CSV -------------------------------------------------------------------

CSV_REQUIRED = ("job_id", "submit", "runtime")
CSV_OPTIONAL = (
    "wait", "requested_time", "cpus", "gpus", "gpu_type", "memory_mb", "nodes",
    "user", "group", "queue", "partition", "name", "job_type", "status",
)  # fmt: skip


def _num(v: str | None) -> float | None:
    if v is None or v.strip() == "" or v.strip() == "-1":
        return None
    return float(v)


def read_csv(path: str | Path, *, cleaning: Cleaning | None = None) -> Trace:
    """Read the generic CSV format (documented in ``docs/simulator.md``).

    A header row names the columns. Required: ``job_id``, ``submit`` (seconds),
    ``runtime`` (seconds). Optional: ``wait``, ``requested_time``, ``cpus``
    (default 1), ``gpus`` (default 0, may be fractional), ``gpu_type``
    (``|``-separated), ``memory_mb``, ``nodes``, ``user``, ``group``, ``queue``,
    ``partition``, ``name``, ``job_type``, ``status``. Empty cells and ``-1``
    mean unknown; other columns are kept in ``extra``. Without a ``wait``
    column every job counts as started with wait 0 (a workload description,
    not a log of what happened).

    Raises:
        ValueError: a required column is missing or a number is malformed.
    """
    cleaning = cleaning if cleaning is not None else Cleaning()
    path = Path(path)
    jobs: list[TraceJob] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        _check_columns(path, reader.fieldnames, CSV_REQUIRED)
        known = set(CSV_REQUIRED) | set(CSV_OPTIONAL)
        has_wait = "wait" in (reader.fieldnames or ())
        for row in reader:
            g = row.get

            def s(key: str) -> str | None:
                v = (g(key) or "").strip()  # noqa: B023
                return v or None

            wait = _num(g("wait")) if has_wait else 0.0
            rq = _num(g("requested_time"))
            mem = _num(g("memory_mb"))
            nodes = _num(g("nodes"))
            jid = int(float(row["job_id"]))
            jobs.append(
                TraceJob(
                    job_id=jid,
                    submit=int(float(row["submit"])),
                    runtime=max(0, int(_num(row["runtime"]) or 0)),
                    wait=None if wait is None else int(wait),
                    requested_time=None if rq is None else int(rq),
                    cpus=_num(g("cpus")) or 1.0,
                    gpus=_num(g("gpus")) or 0.0,
                    gpu_type=s("gpu_type"),
                    memory_mb=mem,
                    nodes=None if nodes is None else int(nodes),
                    user=s("user"),
                    group=s("group"),
                    queue=s("queue"),
                    partition=s("partition"),
                    name=s("name") or f"job{jid}",
                    job_type=s("job_type"),
                    status=(s("status") or "unknown").lower(),
                    extra={k: v for k, v in row.items() if k and k not in known and v},
                )
            )
    return _finish(path.name, "csv", jobs, cleaning)


def read_trace(path: str | Path, fmt: str, *, cleaning: Cleaning | None = None) -> Trace:
    """Read a trace in one of :data:`FORMATS`.

    Raises:
        ValueError: unknown format or malformed file.
    """
    if fmt == "swf":
        return read_swf(path, cleaning=cleaning)
    if fmt == "alibaba-gpu":
        return read_alibaba_pods(path, cleaning=cleaning)
    if fmt == "csv":
        return read_csv(path, cleaning=cleaning)
    raise ValueError(f"unknown trace format {fmt!r} (one of {', '.join(FORMATS)})")
