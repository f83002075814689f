"""Which Slurm is running, and what its command line can do.

* before 23.02: nodes from ``sinfo --json`` (per node), partitions from
  ``scontrol -o show partitions``, jobs from ``squeue --json``;
* 23.02 to 24.05: ``scontrol show nodes --json``, ``scontrol show partitions
  --json``, ``squeue --json``;
* 24.11 and later: the same, pinned with ``--json=v0.0.42`` (accepted by 24.11
  through 26.05).

Pinning keeps the keys stable across upgrades; where a future Slurm refuses
v0.0.42, the adapter falls back to its default ``--json`` (the parsers read
every data_parser layout seen so far: v0.0.38 and v0.0.42 to v0.0.45).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slurmopt.errors import SlurmParseError

PINNED_DATA_PARSER = "v0.0.42"
"""data_parser version requested from Slurm >= 24.11 (same keys as 24.11's default)."""

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True, order=True)
class SlurmVersion:
    """A Slurm release, ordered by (major, minor, micro)."""

    major: int
    minor: int
    micro: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor:02d}.{self.micro}"

    @property
    def short(self) -> str:
        """``"24.11"``: the release series."""
        return f"{self.major}.{self.minor:02d}"

    @property
    def legacy(self) -> bool:
        """True before 23.02: per-node ``sinfo --json``, no ``scontrol --json``."""
        return (self.major, self.minor) < (23, 2)

    @property
    def json_option(self) -> str:
        """The ``--json`` option to pass (pinned from 24.11 on)."""
        if (self.major, self.minor) >= (24, 11):
            return f"--json={PINNED_DATA_PARSER}"
        return "--json"


def parse_version(text: str) -> SlurmVersion:
    """``slurm-wlm 22.05.8`` / ``slurm 24.11.5`` -> SlurmVersion.

    Raises:
        SlurmParseError: no version number in ``text``.
    """
    m = _VERSION.search(text or "")
    if not m:
        raise SlurmParseError(f"cannot read a Slurm version from {text.strip()[:80]!r}")
    return SlurmVersion(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
