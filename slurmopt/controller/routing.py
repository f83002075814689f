"""The routing file read by ``plugins/job_submit.lua``.

Format 1, one record per line (``#`` starts a comment)::

    format 1
    generated_at 1764270000
    route cpu cpu
    route gpu h100,a100,gpu
    route gpu:a100 a100,gpu

``route CLASS PARTITIONS``: for jobs of that class (``cpu``, ``gpu`` for an
untyped GPU request, ``gpu:TYPE`` for a typed one) the ordered partitions,
best first. The plugin sets the first (or the list) and records the list as
the job's allowed set. ``gpus PARTITION TYPES`` (optional, ``-`` for none,
``untyped`` for GPUs without a type): the GPU types of each partition, which
the plugin keeps to compute its fallback set when later advice is unusable.
Written atomically (temporary file + rename), so the plugin never reads half
a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from slurmopt.model import Job, JobRequest, JobState, Snapshot

if TYPE_CHECKING:
    from slurmopt.optimize.config import OptimizeConfig

FORMAT = 1
_CLASS = re.compile(r"^(cpu|gpu|gpu:[A-Za-z_][\w.\-]*)$")
_PART = re.compile(r"^[\w.\-]+$")


def render(
    routes: Mapping[str, Sequence[str]],
    generated_at: int,
    gpus: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The file's text. Classes and partition names are validated (no spaces or commas).

    Raises:
        ValueError: a class or partition name the Lua parser could not read back.
    """
    lines = ["# slurmopt routing advice (written by slurmopt controller)", f"format {FORMAT}"]
    lines.append(f"generated_at {int(generated_at)}")
    for cls in sorted(routes):
        parts = list(routes[cls])
        if not _CLASS.match(cls):
            raise ValueError(f"bad routing class {cls!r}")
        if not parts:
            continue
        bad = [p for p in parts if not _PART.match(p)]
        if bad:
            raise ValueError(f"bad partition name(s) {bad!r} for routing class {cls}")
        lines.append(f"route {cls} {','.join(parts)}")
    for part in sorted(gpus or {}):
        types = sorted(set((gpus or {})[part]))
        if not _PART.match(part) or any(not _PART.match(t) for t in types):
            raise ValueError(f"bad partition or GPU type name in {part!r}: {types!r}")
        lines.append(f"gpus {part} {','.join(types) or '-'}")
    return "\n".join(lines) + "\n"


def partition_gpus(snap: Snapshot) -> dict[str, list[str]]:
    """Per partition, the GPU types of its nodes (``untyped`` for GPUs without a type)."""
    nodes = {n.name: n for n in snap.nodes}
    out: dict[str, list[str]] = {}
    for p in snap.partitions:
        types = {
            t or "untyped"
            for name in p.nodes
            if name in nodes
            for t, c in nodes[name].gpus.items()
            if c > 0
        }
        out[p.name] = sorted(types)
    return out


def parse(text: str) -> tuple[int, dict[str, list[str]]]:
    """Read a routing file back (the Python twin of the Lua reader, for tests and ``why``).

    Raises:
        ValueError: malformed content.
    """
    generated: int | None = None
    fmt: int | None = None
    routes: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        if key == "format":
            fmt = int(rest)
        elif key == "generated_at":
            generated = int(rest)
        elif key == "route":
            cls, _, parts = rest.strip().partition(" ")
            if not parts:
                raise ValueError(f"malformed route line: {raw!r}")
            routes[cls] = parts.strip().split(",")
        elif key == "gpus":
            continue
        else:
            raise ValueError(f"unknown record {key!r}")
    if fmt != FORMAT or generated is None:
        raise ValueError("not a format-1 routing file with generated_at")
    return generated, routes


def classes(snap: Snapshot) -> dict[str, JobRequest]:
    """The routing classes of a cluster and a representative request for each.

    ``cpu`` (one CPU), ``gpu`` (one untyped GPU) and ``gpu:TYPE`` for every GPU
    type a node has (one GPU of that type); each asks for one hour.
    """
    types = sorted({t for n in snap.nodes for t, c in n.gpus.items() if t and c > 0})
    out = {"cpu": JobRequest(time_limit_s=3600)}
    if any(n.gpu_total for n in snap.nodes):
        out["gpu"] = JobRequest(gpus_per_node=1, time_limit_s=3600)
    for t in types:
        out[f"gpu:{t}"] = JobRequest(gpus_per_node=1, gpu_type=t, time_limit_s=3600)
    return out


def advise(snap: Snapshot, cfg: OptimizeConfig) -> dict[str, list[str]]:
    """Per routing class, the partitions best first, by optsub's own ranking rule.

    Each class's representative job is ranked with
    :func:`slurmopt.optimize.ranking.rank_new_job` (the function optsub and the
    simulator's ``optsub`` policy call), queued behind every pending job as a
    new submission. A typed class keeps its GPU type (the plugin does not
    rewrite requests).
    """
    from slurmopt.optimize.problem import Problem
    from slurmopt.optimize.ranking import rank_new_job

    everywhere = [p.name for p in snap.partitions]
    gpu_nodes = {n.name for n in snap.nodes if n.gpu_total}
    gpu_less = {p.name for p in snap.partitions if not set(p.nodes) & gpu_nodes}
    routes: dict[str, list[str]] = {}
    for cls, request in classes(snap).items():
        job = Job(
            job_id=_PROBE_JOB_ID,
            name=f"routing-{cls}",
            user="",
            state=JobState.PENDING,
            partitions=(),
            request=request,
            submit_time=int(snap.taken_at),
        )
        problem = Problem.build(
            snap, cfg, jobs=[job], allowed={_PROBE_JOB_ID: everywhere}, pinned=[_PROBE_JOB_ID]
        )
        ok = list(rank_new_job(problem, _PROBE_JOB_ID, everywhere).ordered)
        if not ok:
            continue
        if cls == "cpu":  # CPU work stays off GPU partitions while a CPU partition can run it
            cpu_only = [c for c in ok if c.partition in gpu_less]
            ok = cpu_only or ok
        routes[cls] = [c.partition for c in ok]
    return routes


_PROBE_JOB_ID = -2
