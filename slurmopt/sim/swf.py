"""SWF v2.2 reader (Standard Workload Format of the Parallel Workloads Archive)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from slurmopt.sim.tracejob import Cleaning, Trace, TraceJob, finish_trace

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

    return finish_trace(
        path.name,
        "swf",
        jobs,
        cleaning,
        header=header,
        max_nodes=_int("MaxNodes"),
        max_procs=_int("MaxProcs"),
        unix_start=_int("UnixStartTime"),
    )
