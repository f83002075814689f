"""Which pending jobs Slurm knows for a few users (one light ``squeue`` call).

optsub uses it to count another user's recent spool records only for jobs
Slurm really has pending for that user (docs/security.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from slurmopt.slurm.runner import Runner

_ID = re.compile(r"\d+")


def parse_pending(text: str) -> dict[int, tuple[str, str]]:
    """``squeue -h -o '%i|%u|%P'`` lines -> job id -> (user, partitions); array tasks by job id."""
    out: dict[int, tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3:
            continue
        m = _ID.match(parts[0])
        if m:
            out[int(m.group())] = (parts[1], parts[2])
    return out


def pending_jobs_of(
    users: Iterable[str], *, runner: Runner | None = None, timeout: float = 5.0
) -> dict[int, tuple[str, str]]:
    """Pending jobs of ``users``: job id -> (user, partitions as Slurm lists them).

    Raises:
        SlurmUnavailable, SlurmCommandError: squeue failed.
    """
    names = sorted(set(users))
    if not names:
        return {}
    r = runner or Runner()
    res = r.run(
        ["squeue", "-h", "-t", "PD", "-u", ",".join(names), "-o", "%i|%u|%P"], timeout=timeout
    )
    return parse_pending(res.stdout)
