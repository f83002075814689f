"""Where the history database lives (standard library only).

The full configuration system reads the ``[history]`` section into
:class:`HistoryConfig`; ``SLURMOPT_DB_URL`` in the environment overrides the
URL in any case.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_URL = "SLURMOPT_DB_URL"
ENV_SPOOL = "SLURMOPT_SPOOL_DIR"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``/var/lib/slurmopt`` for root, else ``$XDG_STATE_HOME/slurmopt`` (``~/.local/state``)."""
    env = os.environ if env is None else env
    if os.geteuid() == 0:
        return Path("/var/lib/slurmopt")
    xdg = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local/state")
    return Path(xdg) / "slurmopt"


def sqlite_url(path: Path | str) -> str:
    """The SQLAlchemy URL of an SQLite file."""
    return f"sqlite:///{Path(path).expanduser().absolute()}"


@dataclass(frozen=True)
class HistoryConfig:
    """The ``[history]`` configuration section."""

    url: str = field(
        default="",
        metadata={
            "help": "SQLAlchemy URL of the history database; empty: an SQLite file "
            "history.sqlite in the state directory. $SLURMOPT_DB_URL overrides."
        },
    )
    busy_timeout_s: float = field(
        default=30.0, metadata={"help": "SQLite: how long a writer waits for a lock."}
    )
    spool_dir: str = field(
        default="",
        metadata={
            "help": "optsub's spool of decisions (JSON lines); optsub uses it too unless "
            "[optsub] spool_dir is set. Empty: /var/spool/slurmopt when it exists (or for "
            "root), else $XDG_STATE_HOME/slurmopt/spool."
        },
    )
    use_predictions: bool = field(
        default=True,
        metadata={
            "help": "Let the optimizer use runtimes predicted from the jobs the history saw "
            "finish instead of time limits (a job with no similar finished job keeps its "
            "limit). The controller passes them to optsub through the state cache."
        },
    )
    use_learned_speeds: bool = field(
        default=False,
        metadata={"help": "Let the optimizer use speed factors learned from history."},
    )

    def resolved_url(self, env: Mapping[str, str] | None = None) -> str:
        """The URL to connect to: ``$SLURMOPT_DB_URL``, then :attr:`url`, then the default file."""
        env = os.environ if env is None else env
        if env.get(ENV_URL):
            return env[ENV_URL]
        if self.url:
            return self.url
        return sqlite_url(default_state_dir(env) / "history.sqlite")

    def resolved_spool(self, env: Mapping[str, str] | None = None) -> Path:
        """The spool directory optsub writes to (:func:`slurmopt.optsub.spool.spool_dir`).

        ``$SLURMOPT_SPOOL_DIR`` (or ``$SLURMOPT_SPOOL``), then :attr:`spool_dir`,
        then the shared spool ``/var/spool/slurmopt`` when it exists or for
        root, else the user's ``$XDG_STATE_HOME/slurmopt/spool``: the same rule
        optsub follows, so what it writes is what this ingests.
        """
        from slurmopt.optsub.spool import spool_dir

        return Path(spool_dir(self.spool_dir, os.environ if env is None else env))


def configured() -> HistoryConfig:
    """The ``[history]`` section when the config system knows it, else the defaults.

    Raises:
        ConfigError: an invalid configuration file.
    """
    from slurmopt import config

    if "history" not in config.SECTIONS:
        return HistoryConfig()
    section = config.load()["history"]
    assert isinstance(section, HistoryConfig)
    return section
