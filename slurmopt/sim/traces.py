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

from pathlib import Path

from slurmopt.sim.alibaba import (
    ALIBABA_NODE_COLUMNS,
    ALIBABA_POD_COLUMNS,
    AlibabaNode,
    read_alibaba_nodes,
    read_alibaba_pods,
)
from slurmopt.sim.csvtrace import CSV_OPTIONAL, CSV_REQUIRED, read_csv
from slurmopt.sim.swf import (
    SWF_FIELDS,
    SWF_STATUS,
    SWF_STATUS_CANCELLED,
    parse_swf_header,
    read_swf,
    swf_record,
)
from slurmopt.sim.tracejob import Cleaning, Trace, TraceFormat, TraceJob

FORMATS: tuple[str, ...] = ("swf", "alibaba-gpu", "csv")

__all__ = [
    "ALIBABA_NODE_COLUMNS",
    "ALIBABA_POD_COLUMNS",
    "CSV_OPTIONAL",
    "CSV_REQUIRED",
    "FORMATS",
    "SWF_FIELDS",
    "SWF_STATUS",
    "SWF_STATUS_CANCELLED",
    "AlibabaNode",
    "Cleaning",
    "Trace",
    "TraceFormat",
    "TraceJob",
    "parse_swf_header",
    "read_alibaba_nodes",
    "read_alibaba_pods",
    "read_csv",
    "read_swf",
    "read_trace",
    "swf_record",
]


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
