"""Read a snapshot from a saved JSON file or live from Slurm; save one.

Every command that works on cluster state takes ``--snapshot FILE`` (replay a
saved ``slurmopt snapshot --json``) or reads live through :func:`get_backend`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from slurmopt.errors import ConfigError
from slurmopt.model import Snapshot
from slurmopt.slurm.backend import Backend, get_backend


def load_snapshot(path: str | Path | None, *, backend: Backend | None = None) -> Snapshot:
    """A snapshot from ``path`` (``-`` is stdin), or live when ``path`` is None.

    A file-read snapshot gets ``source = "file:<path>"`` unless it already names one.

    Raises:
        ConfigError: the file is missing, not JSON, or not a supported snapshot.
        SlurmUnavailable, SlurmCommandError, SlurmParseError: a live read failed.
    """
    if path is None:
        return (backend or get_backend()).snapshot()
    name = str(path)
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read snapshot {name}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"snapshot {name} is not JSON: not UTF-8 text (byte {exc.start})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"snapshot {name} is not JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"snapshot {name}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"snapshot {name} is not a JSON object")
    try:
        snap = Snapshot.from_dict(data)
    except ValueError as exc:
        what = "" if "format" in str(exc) else "malformed: "
        raise ConfigError(f"snapshot {name}: {what}{exc}") from None
    if not snap.source or not snap.source.startswith("file:"):
        from dataclasses import replace

        snap = replace(snap, source=f"file:{name}")
    return snap


def dump_snapshot(snap: Snapshot) -> str:
    """The versioned JSON text of ``snap`` (stable key order, one trailing newline)."""
    return json.dumps(snap.to_dict(), indent=2, sort_keys=False) + "\n"


def save_snapshot(snap: Snapshot, path: str | Path) -> None:
    """Write ``snap`` as JSON to ``path`` (atomically: a temporary file, then rename)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(dump_snapshot(snap), encoding="utf-8")
    tmp.replace(target)
