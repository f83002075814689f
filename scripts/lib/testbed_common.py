"""Shared pieces of scripts/testbed: messages, errors, the state directory layout.

Standard library only (scripts/testbed runs before any virtualenv exists).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

MARKER = "SLURMOPT_TESTBED_OWNER"
"""Environment variable set in every daemon we start (and so in its slurmstepds)."""


def say(msg: str) -> None:
    """A progress or error line on stderr."""
    print(f"testbed: {msg}", file=sys.stderr, flush=True)


class TestbedError(Exception):
    """A failure with a message for the user (exit status 1)."""


class Paths:
    """Where everything of one testbed lives (all under ``root``, munge possibly in /run)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.etc = root / "etc"
        self.conf = self.etc / "slurm.conf"
        self.gres = self.etc / "gres.conf"
        self.cgroup = self.etc / "cgroup.conf"
        self.pids = root / "pids"
        self.run = root / "run"
        self.log = root / "log"
        self.state = root / "state"
        self.spool = root / "spool"
        self.dev = root / "dev"
        self.info = root / "testbed.json"
        self.munge = self._munge_dir()
        self.munge_sock = self.munge / "munge.socket"
        self.dbd_conf = self.etc / "slurmdbd.conf"
        self.mysql = root / "mysql"
        """MariaDB's data directory (``mysql/data``), password file and setup stamp."""
        self.mysql_sock = self.mysql / "mysqld.sock"
        if len(str(self.mysql_sock)) >= 100:  # sun_path limit: beside munge's /run fallback
            self.mysql_sock = self._run_fallback() / "mysqld.sock"

    def _munge_dir(self) -> Path:
        """munged (user munge) needs to reach its dir; else use a private dir in /run."""
        inside = self.root / "munge"
        reachable = all(
            os.stat(p).st_mode & 0o001 for p in [*reversed(self.root.parents)] if p.exists()
        )
        if reachable and len(str(inside / "munge.socket")) < 100:
            return inside
        return self._run_fallback() / "munge"

    def _run_fallback(self) -> Path:
        tag = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
        return Path("/run") / f"slurmopt-testbed-{tag}"

    def pid_file(self, daemon: str) -> Path:
        return self.pids / f"{daemon}.pid"


def load_info(paths: Paths) -> dict[str, object]:
    """The saved facts of the last ``up`` (spec, port base, Slurm version, ...), or {}."""
    try:
        data = json.loads(paths.info.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_info(paths: Paths, info: dict[str, object]) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.info.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    tmp.replace(paths.info)


def run(
    argv: list[str], timeout: float = 30, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run argv (never a shell) with a timeout; a non-zero exit does not raise."""
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def slurm_env(paths: Paths) -> dict[str, str]:
    return dict(os.environ, SLURM_CONF=str(paths.conf))
