"""The controller's intent journal: what a cycle is about to change, written before it does.

One JSON file next to the cycle lock (``controller.journal`` beside
``controller.lock``, root's state directory). A cycle that will change
anything in Slurm first writes its decisions there (outcome ``intended``,
fsync + rename), rewrites it as each change is sent, and removes it once the
history database holds the final record. A cycle that cannot write it applies
nothing (:class:`JournalError`). If the controller dies, slurmctld stops
answering, or the database cannot record, the file stays; the next cycle reads
it under the same lock, settles every change whose effect is unknown from
Slurm's own state, records the result, then removes it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from slurmopt.controller.report import CycleReport
from slurmopt.errors import SlurmoptError
from slurmopt.fsutil import write_atomic

log = logging.getLogger(__name__)

VERSION = 1
MAX_BYTES = 32 * 1024 * 1024


class JournalError(SlurmoptError):
    """The intent could not be recorded: the cycle applies nothing."""

    exit_code = 9


class Journal:
    """``controller.journal``: at most one cycle's report at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def beside(cls, lock_path: Path) -> Journal:
        """The journal next to a lock file (``controller.lock`` -> ``controller.journal``)."""
        lock_path = Path(lock_path)
        name = lock_path.stem if lock_path.suffix == ".lock" else lock_path.name
        return cls(lock_path.with_name(name + ".journal"))

    def write(self, report: CycleReport, cluster: str) -> None:
        """Write (replace) the journal durably.

        Raises:
            JournalError: it could not be written (nothing may be applied).
        """
        data = {"version": VERSION, "cluster": cluster, "report": report.to_dict()}
        try:
            write_atomic(self.path, json.dumps(data, default=str) + "\n", mode=0o600)
        except (OSError, ValueError) as exc:
            raise JournalError(f"cannot record the intent in {self.path}: {exc}") from exc

    def load(self) -> tuple[CycleReport, str] | None:
        """The journalled report and its cluster, or None when there is none.

        A journal that cannot be read back (truncated by a full disk, edited by
        hand) is renamed ``*.unreadable`` with a warning: its changes can no
        longer be reconciled, and keeping it would block every later cycle.
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from exc
        try:
            if size > MAX_BYTES:
                raise ValueError(f"larger than {MAX_BYTES} bytes")
            data = json.loads(self.path.read_bytes().decode("utf-8"))
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("not a version-1 journal")
            cluster = data.get("cluster")
            if not isinstance(cluster, str) or not isinstance(data.get("report"), dict):
                raise ValueError("no cluster / report")
            return CycleReport.from_dict(data["report"]), cluster
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning("journal %s is unreadable (%s): moved aside", self.path, exc)
            self.set_aside("unreadable")
            return None
        except OSError as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from exc

    def set_aside(self, why: str) -> Path:
        """Rename the journal ``<name>.<why>`` (kept for a person to read); returns the new path.

        Raises:
            JournalError: it cannot be renamed (every later cycle would stop on it).
        """
        aside = self.path.with_name(f"{self.path.name}.{why}")
        try:
            os.replace(self.path, aside)
        except OSError as err:
            raise JournalError(f"cannot move aside the journal {self.path}: {err}") from err
        return aside

    def clear(self) -> None:
        """Remove the journal (the database holds the record now)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove the journal %s: %s (replayed next cycle)", self.path, exc)
