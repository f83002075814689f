"""A non-blocking exclusive lock held for a whole controller cycle."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from slurmopt.errors import ConfigError, SlurmoptError


class AlreadyRunning(SlurmoptError):
    """Another controller holds the lock: this run does nothing."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class CycleLock:
    """``with CycleLock(path):`` holds an flock on ``path`` or raises :class:`AlreadyRunning`.

    The lock is released by the kernel when the process dies, so a crashed
    controller never blocks the next one.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> CycleLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"cannot open the cycle lock {self.path}: {exc.strerror or exc} "
                "([controller] lock_file); this run did nothing"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"another slurmopt controller is running (pid {holder}, lock {self.path}); "
                "this run did nothing"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
