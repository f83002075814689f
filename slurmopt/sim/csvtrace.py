"""The generic CSV trace reader (columns documented in ``docs/simulator.md``)."""

from __future__ import annotations

import csv
from pathlib import Path

from slurmopt.sim.alibaba import check_columns
from slurmopt.sim.tracejob import Cleaning, Trace, TraceJob, finish_trace

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
        check_columns(path, reader.fieldnames, CSV_REQUIRED)
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
    return finish_trace(path.name, "csv", jobs, cleaning)
