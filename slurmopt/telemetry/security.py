"""GPU use outside the scheduler: processes on a GPU that no Slurm job of theirs holds.

For every compute process NVML lists on a GPU (mapped to a user, cgroup and
Slurm job by :func:`slurmopt.telemetry.host.process_owner`), with the GPU's
holder taken from the allocation (:mod:`slurmopt.telemetry.alloc`):

* the GPU is held by no job: the process uses it outside Slurm;
* the process belongs to another Slurm job than the one holding the GPU;
* the process runs as another user than the holding job's user.

Users in :attr:`SecurityConfig.allowed_users` (monitoring agents) are exempt.
Such processes are flagged and alerted (rule ``gpu_foreign_process``); they are
killed only when a site sets ``kill=True`` (SIGTERM, then nothing more: the
alert stays until the process is gone).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slurmopt.telemetry.probe import ProbeResult
from slurmopt.telemetry.series import Observation, gpu_subject

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    allowed_users: frozenset[str] = frozenset({"root", "nvidia-persistenced", "dcgm"})
    kill: bool = False
    """Send SIGTERM to flagged processes (off unless a site enables it)."""


@dataclass(frozen=True, slots=True)
class ForeignProcess:
    node: str
    gpu_index: int
    pid: int
    user: str | None
    job_id: int | None
    holder_job: int | None
    holder_user: str | None
    why: str

    def describe(self) -> str:
        return f"pid {self.pid} user {self.user or '?'} ({self.why})"


def find_foreign(probe: ProbeResult, cfg: SecurityConfig | None = None) -> list[ForeignProcess]:
    """Processes on this node's GPUs that their Slurm allocation does not explain."""
    cfg = cfg or SecurityConfig()
    out: list[ForeignProcess] = []
    for g in probe.gpus:
        for p in g.processes:
            if p.user is not None and p.user in cfg.allowed_users:
                continue
            why = None
            if g.job_id is None:
                why = "no Slurm job holds this GPU"
            elif p.job_id is not None and p.job_id != g.job_id:
                why = f"process of job {p.job_id}, GPU held by job {g.job_id}"
            elif p.user is not None and g.job_user and p.user != g.job_user:
                why = f"GPU held by job {g.job_id} of {g.job_user}"
            if why is not None:
                out.append(
                    ForeignProcess(
                        probe.node, g.index, p.pid, p.user, p.job_id, g.job_id, g.job_user, why
                    )
                )
    return out


def observations(probe: ProbeResult, found: Sequence[ForeignProcess]) -> list[Observation]:
    """``foreign_procs`` per GPU (0 where none), with the processes in the note."""
    at = int(probe.taken_at)
    out: list[Observation] = []
    for g in probe.gpus:
        mine = [f for f in found if f.gpu_index == g.index]
        note = "; ".join(f.describe() for f in mine)
        out.append(
            Observation(
                at,
                gpu_subject(probe.node, g.index),
                "foreign_procs",
                float(len(mine)),
                g.job_id,
                note,
            )
        )
    return out


def enforce(
    found: Sequence[ForeignProcess], cfg: SecurityConfig, kill: Callable[[int, int], None] = os.kill
) -> list[int]:
    """SIGTERM the flagged processes when the site enabled it; returns the pids signalled."""
    if not cfg.kill:
        return []
    done: list[int] = []
    for f in found:
        try:
            kill(f.pid, signal.SIGTERM)
            done.append(f.pid)
            log.warning("sent SIGTERM to pid %d on %s GPU%d: %s", f.pid, f.node, f.gpu_index, f.why)
        except OSError as exc:
            log.error("cannot signal pid %d: %s", f.pid, exc)
    return done
