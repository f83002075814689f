"""optsub's decision spool: append-only JSON lines, ingested later by the controller.

Standard library only. One line per submission, written with a single
``write(2)`` on a file opened ``O_APPEND`` under an exclusive ``flock``, so
concurrent optsub processes never interleave lines. Files are per user
(``optsub-<user>.jsonl``): the ingester (:mod:`slurmopt.history.spool`) claims a
file by renaming it, after which the next optsub starts a new one.

Record schema (``kind`` = ``optsub.decision``), matching the history
database's ``spool_records`` table::

    {"key": "optsub-<host>-<pid>-<ns>", "at": <epoch s>, "kind": "optsub.decision",
     "job_id": <int or null>, "user": "...", "data": {...}}

``data`` holds the decision (``Decision.to_dict()``): original and final argv,
the allowed set, the chosen partition and GPU type, every candidate, the state
source, fallback warnings and sbatch's exit code.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

SHARED_SPOOL = "/var/spool/slurmopt"


def spool_dirs(configured: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Candidate spool directories, most preferred first (strings: no pathlib on this path)."""
    env = os.environ if env is None else env
    out = [env[k] for k in ("SLURMOPT_SPOOL_DIR", "SLURMOPT_SPOOL") if env.get(k)]
    if configured:
        out.append(configured)
    out.append(SHARED_SPOOL)
    home = os.path.expanduser(env.get("HOME", "~"))
    xdg = env.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state")
    out.append(os.path.join(xdg, "slurmopt", "spool"))
    return out


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def make_record(
    job_id: int | None, data: Mapping[str, Any], *, now: float | None = None
) -> dict[str, Any]:
    """One spool record (see the module docstring)."""
    t = time.time() if now is None else now
    return {
        "key": f"optsub-{os.uname().nodename}-{os.getpid()}-{time.time_ns()}",
        "at": int(t),
        "kind": "optsub.decision",
        "job_id": job_id,
        "user": _user(),
        "data": dict(data),
    }


def _ensure_dir(d: str, *, last: bool) -> None:
    """Create a spool directory that is missing.

    The shared spool is created world-writable and sticky (like /tmp): every
    user appends to a file of their own, only the owner and root remove files.

    Raises:
        OSError: it cannot be created (the caller tries the next directory).
    """
    if os.path.isdir(d):
        return
    shared = os.path.normpath(d) == SHARED_SPOOL
    if shared and os.geteuid() != 0 and not last:
        raise PermissionError(f"{d} does not exist (an admin creates it)")
    os.makedirs(d, exist_ok=True)
    if shared:
        os.chmod(d, 0o1777)


def append(record: Mapping[str, Any], dirs: Iterable[str | os.PathLike[str]]) -> str:
    """Append ``record`` as one line to the first usable directory; return the file.

    The last directory (the user's own) is created when missing.

    Raises:
        OSError: no directory is writable.
    """
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    names = [os.fspath(d) for d in dirs]
    last_exc: OSError | None = None
    for i, d in enumerate(names):
        try:
            _ensure_dir(d, last=i == len(names) - 1)
            path, fd = _open_own(d, _user())
        except OSError as exc:
            last_exc = exc
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)
        return path
    raise last_exc or OSError("no spool directory")


_WRITE = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _open_own(d: str, user: str) -> tuple[str, int]:
    """Open this user's spool file in ``d`` for appending, never someone else's.

    ``optsub-<user>.jsonl`` is used if it is a regular file with one link owned
    by the caller (or is created). Anything else there (a symlink, a FIFO, a
    hard link, a file another user created under this user's name) is left
    alone and a new file of the caller's own, ``optsub-<user>.<pid>-<ns>.jsonl``,
    is created instead (docs/security.md).

    Raises:
        OSError: the directory is not writable.
    """
    import errno
    import stat

    path = os.path.join(d, f"optsub-{user}.jsonl")
    try:
        fd = os.open(path, _WRITE | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EACCES, errno.EPERM):
            raise
    else:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_nlink == 1:
            return path, fd
        os.close(fd)
    log.warning("%s is not this user's own file: writing to a new file", path)
    path = os.path.join(d, f"optsub-{user}.{os.getpid()}-{time.time_ns()}.jsonl")
    return path, os.open(path, _WRITE | os.O_CREAT | os.O_EXCL, 0o644)


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a spool file (tests and tools)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
