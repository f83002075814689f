"""Host probe through psutil: CPU, load, memory, swap, disks, network; process owners.

psutil comes with the ``[gpu]`` extra and is imported when a probe runs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_DISK_PATHS: tuple[str, ...] = ("/var/spool/slurmd", "/var/spool/slurm", "/tmp")
"""Paths whose file system usage is reported (missing ones are skipped)."""

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DiskUsage:
    path: str
    total_mb: int
    used_mb: int
    percent: float


@dataclass(frozen=True, slots=True)
class HostSample:
    """Host-level figures of one probe."""

    cpu_count: int
    cpu_percent: float
    load_1m: float
    load_5m: float
    load_15m: float
    memory_total_mb: int
    memory_available_mb: int
    memory_percent: float
    swap_total_mb: int
    swap_used_mb: int
    disks: tuple[DiskUsage, ...] = ()
    net_bytes_sent: int = 0
    net_bytes_recv: int = 0
    net_errin: int = 0
    net_errout: int = 0


def probe_host(
    disk_paths: Sequence[str] = DEFAULT_DISK_PATHS, *, cpu_interval_s: float = 0.1
) -> HostSample:
    """Read the host's figures.

    Args:
        disk_paths: file systems to report; paths that do not exist are skipped.
        cpu_interval_s: sampling window of the CPU percentage.
    """
    import psutil  # the [gpu] extra; imported when a probe runs

    load = os.getloadavg()
    vm = psutil.virtual_memory()
    sw = psutil.swap_memory()
    disks: list[DiskUsage] = []
    for path in disk_paths:
        if not os.path.exists(path):
            continue
        try:
            du = psutil.disk_usage(path)
        except OSError as exc:
            log.warning("disk usage of %s: %s", path, exc)
            continue
        disks.append(DiskUsage(path, du.total // _MIB, du.used // _MIB, float(du.percent)))
    net = psutil.net_io_counters(pernic=False)
    return HostSample(
        cpu_count=psutil.cpu_count() or 0,
        cpu_percent=float(psutil.cpu_percent(interval=cpu_interval_s)),
        load_1m=load[0],
        load_5m=load[1],
        load_15m=load[2],
        memory_total_mb=vm.total // _MIB,
        memory_available_mb=vm.available // _MIB,
        memory_percent=float(vm.percent),
        swap_total_mb=sw.total // _MIB,
        swap_used_mb=sw.used // _MIB,
        disks=tuple(disks),
        net_bytes_sent=int(getattr(net, "bytes_sent", 0)),
        net_bytes_recv=int(getattr(net, "bytes_recv", 0)),
        net_errin=int(getattr(net, "errin", 0)),
        net_errout=int(getattr(net, "errout", 0)),
    )


# Slurm's cgroup layouts: v1 ".../slurm/uid_1000/job_42/step_0", v2
# ".../system.slice/slurmstepd.scope/job_42/step_0/user/task_0".
_CGROUP_JOB = re.compile(r"/job_(\d+)(?:/|$)")


def job_from_cgroup(cgroup_text: str) -> int | None:
    """The Slurm job id in a ``/proc/PID/cgroup`` text, or None."""
    for line in cgroup_text.splitlines():
        m = _CGROUP_JOB.search(line.rsplit(":", 1)[-1])
        if m:
            return int(m.group(1))
    return None


@dataclass(frozen=True, slots=True)
class ProcessOwner:
    user: str | None
    job_id: int | None
    cgroup: str | None


def process_owner(pid: int, proc_root: str = "/proc") -> ProcessOwner:
    """User, Slurm job and cgroup of a process (None where unreadable or gone).

    The job comes from the cgroup path (``job_N``, set by Slurm's cgroup plugins)
    and, failing that, from ``SLURM_JOB_ID`` in the process environment (readable
    by root only).
    """
    import psutil  # the [gpu] extra; imported when a probe runs

    user: str | None = None
    try:
        user = psutil.Process(pid).username()
    except (psutil.Error, KeyError) as exc:
        log.debug("owner of pid %d: %s", pid, exc)
    cgroup: str | None = None
    job: int | None = None
    try:
        with open(f"{proc_root}/{pid}/cgroup", encoding="utf-8") as fh:
            text = fh.read()
        cgroup = text.strip().splitlines()[-1].rsplit(":", 1)[-1] if text.strip() else None
        job = job_from_cgroup(text)
    except OSError as exc:
        log.debug("cgroup of pid %d: %s", pid, exc)
    if job is None:
        try:
            env = psutil.Process(pid).environ()
            if env.get("SLURM_JOB_ID", "").isdigit():
                job = int(env["SLURM_JOB_ID"])
        except psutil.Error as exc:
            log.debug("environment of pid %d: %s", pid, exc)
    return ProcessOwner(user, job, cgroup)
