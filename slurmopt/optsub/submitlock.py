"""A short, bounded lock around decide -> sbatch -> spool record (standard library only).

optsub processes deciding at the same moment read the same state: each sees
the GPU the other is about to take as free, and both send their jobs there. A
submission counts for the next decision once it is in Slurm (the live refresh's
squeue) or in the spool (the overlay), so optsub holds an advisory ``flock`` on
``<spool>/.optsub-submit.lock`` from before it reads the state until its record
is written: the next optsub decides on a picture that holds this job.

The spool is world-writable (sticky), so the lock file is untrusted input
(docs/security.md). The lock only ever *delays* a submission, by at most
``[optsub] submit_lock_s``, and never makes one fail:

* the directory is opened without following a symlink (:func:`slurmopt.fsutil.open_dir_nofollow`,
  which also refuses a non-sticky world-writable or foreign-owned one), the file
  relative to it with ``O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`` and read-only
  (created ``0444`` with ``O_EXCL`` when missing); a symlink, FIFO, socket,
  device, directory or a file with more than one link is not locked;
* the lock is tried without blocking and retried every few milliseconds until
  the bound: a user who holds it (or a stuck optsub) costs every other
  submission at most the bound, then optsub decides without it (fail open);
* anything else that goes wrong (permissions, a full disk, no spool) means no
  lock, silently: the decision is as good as it was without one.

The descriptor is close-on-exec (sbatch does not inherit it), and the lock goes
with the process: a killed optsub holds nothing.
"""

from __future__ import annotations

import contextlib
import os
import time

LOCK_NAME = ".optsub-submit.lock"
"""The lock file in the spool (no ``optsub-`` prefix: the overlay and ingestion skip it)."""

POLL_S = 0.005
"""How often a held lock is tried again."""

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def acquire(directory: str, timeout_s: float) -> int | None:
    """The locked descriptor, or None: not locked within ``timeout_s`` or not lockable safely.

    Never raises for the lock's sake, never waits longer than ``timeout_s`` (plus
    one poll).
    """
    if timeout_s <= 0 or not directory:
        return None
    deadline = time.monotonic() + timeout_s
    fd = _open(directory)
    if fd is None:
        return None
    import fcntl

    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except OSError:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(POLL_S, left))
    os.close(fd)
    return None


def release(fd: int | None) -> None:
    """Give the lock back (None: nothing held). Never raises."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.close(fd)  # closing the only descriptor releases the flock


def _open(directory: str) -> int | None:
    """The lock file opened read-only relative to the spool's descriptor, or None."""
    import stat

    from slurmopt.fsutil import Refused, open_dir_nofollow

    try:
        dfd = open_dir_nofollow(directory)
    except (OSError, Refused):
        return None
    try:
        try:
            fd = os.open(LOCK_NAME, _FLAGS, dir_fd=dfd)
        except FileNotFoundError:
            try:
                fd = os.open(LOCK_NAME, _FLAGS | os.O_CREAT | os.O_EXCL, 0o444, dir_fd=dfd)
            except FileExistsError:  # created at the same moment by another optsub
                fd = os.open(LOCK_NAME, _FLAGS, dir_fd=dfd)
    except OSError:
        return None  # a symlink (ELOOP), no permission, a read-only spool...
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None
