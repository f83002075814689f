"""Alibaba GPU 2023 trace readers (``openb_pod_list_*.csv``, ``openb_node_list_*.csv``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slurmopt.sim.tracejob import Cleaning, Trace, TraceJob, finish_trace

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


def check_columns(path: Path, got: Sequence[str] | None, want: tuple[str, ...]) -> None:
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
        check_columns(path, reader.fieldnames, ALIBABA_POD_COLUMNS)
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
    return finish_trace(path.name, "alibaba-gpu", jobs, cleaning)


def read_alibaba_nodes(path: str | Path) -> tuple[AlibabaNode, ...]:
    """Read ``openb_node_list_*.csv`` (``sn, cpu_milli, memory_mib, gpu, model``).

    Raises:
        ValueError: a column is missing or a number is malformed.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        check_columns(path, reader.fieldnames, ALIBABA_NODE_COLUMNS)
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
