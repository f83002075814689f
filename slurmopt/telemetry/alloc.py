"""Which Slurm job holds which GPU, and what gres.conf promises for a node.

Approach (robust against jobs that run nothing on the GPU yet, and against
processes that hide their environment): the allocation is authoritative. Slurm
reports each running job's GPU indexes per node (``gres_detail``
``gpu:a100:2(IDX:0-1)``, in the model as ``Job.gpu_indexes``). Those indexes
are positions in the node's GRES device list, i.e. the order of the ``File=``
devices in gres.conf. With ``File=/dev/nvidiaN`` known, index i maps to the
NVML device whose minor number is N; without gres.conf (or with count-only
GRES) index i is taken as NVML index i, which is what ``AutoDetect=nvml``
produces (both order by PCI bus id).

When the controller cannot be reached, the probe falls back to the processes on
each GPU: their Slurm job comes from the cgroup path (``job_N``) or
``SLURM_JOB_ID`` (see :func:`slurmopt.telemetry.host.process_owner`).
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from slurmopt.model import Job
from slurmopt.slurm.hostlist import expand

log = logging.getLogger(__name__)

NVIDIA_MAJOR = 195


@dataclass(frozen=True, slots=True)
class GresGpuLine:
    """One ``Name=gpu`` line of gres.conf."""

    nodes: tuple[str, ...] | None
    """None: the line applies to every node."""
    gpu_type: str
    count: int
    files: tuple[str, ...]


def _expand(expr: str) -> list[str]:
    try:
        return expand(expr)
    except ValueError:
        log.warning("gres.conf: cannot expand %r", expr)
        return [expr]


def parse_gres_conf(text: str) -> list[GresGpuLine]:
    """The GPU lines of a gres.conf text (other GRES and AutoDetect lines are skipped)."""
    out: list[GresGpuLine] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kv: dict[str, str] = {}
        for tok in line.split():
            k, sep, v = tok.partition("=")
            if sep:
                kv[k.lower()] = v
        if kv.get("name") != "gpu":
            continue
        files = tuple(_expand(kv["file"])) if "file" in kv else ()
        count_s = kv.get("count", "")
        count = int(count_s) if count_s.isdigit() else len(files) or 1
        nodes = tuple(_expand(kv["nodename"])) if "nodename" in kv else None
        out.append(GresGpuLine(nodes, kv.get("type", ""), count, files))
    return out


def gres_gpus_for(lines: Iterable[GresGpuLine], node: str) -> tuple[int, tuple[str, ...]]:
    """(expected GPU count, device files in GRES index order) of ``node``."""
    count = 0
    files: list[str] = []
    for ln in lines:
        if ln.nodes is None or node in ln.nodes:
            count += ln.count
            files.extend(ln.files)
    return count, tuple(files)


def minor_of(path: str) -> int | None:
    """Minor number of an NVIDIA device file (None when it is not one).

    From the character device itself when it exists (NVIDIA's major is 195),
    else from the name (``.../nvidiaN``).
    """
    try:
        st = os.stat(path)
        if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == NVIDIA_MAJOR:
            return os.minor(st.st_rdev)
    except OSError:
        pass
    m = re.fullmatch(r"nvidia(\d+)", os.path.basename(path))
    return int(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class Holder:
    job_id: int
    user: str


def holders_from_jobs(
    jobs: Iterable[Job],
    node: str,
    *,
    gres_files: Sequence[str] = (),
    minors: Mapping[int, int] | None = None,
) -> dict[int, Holder]:
    """NVML index -> the running job holding that GPU on ``node``.

    Args:
        jobs: jobs of a snapshot (only running ones with ``gpu_indexes`` count).
        node: this node's Slurm name.
        gres_files: the node's gres.conf device files in GRES index order.
        minors: NVML index -> minor number of the GPUs found by NVML.
    """
    minor_to_nvml = {m: i for i, m in (minors or {}).items()}
    out: dict[int, Holder] = {}
    for job in jobs:
        if not job.running:
            continue
        for idx in job.gpu_indexes.get(node, ()):
            nvml_idx: int | None = idx
            if idx < len(gres_files):
                minor = minor_of(gres_files[idx])
                if minor is not None and minor in minor_to_nvml:
                    nvml_idx = minor_to_nvml[minor]
            if nvml_idx is None:
                continue
            if nvml_idx in out and out[nvml_idx].job_id != job.job_id:
                log.warning(
                    "GPU %d of %s held by jobs %d and %d",
                    nvml_idx,
                    node,
                    out[nvml_idx].job_id,
                    job.job_id,
                )
            out[nvml_idx] = Holder(job.job_id, job.user)
    return out
