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
source, fallback warnings and sbatch's exit code; ``tag`` and ``job_id_from``
when the job id was recovered by the submission's tag (``docs/optsub.md``).

Where: :func:`spool_dir` is the one place that decides, for optsub and for the
controller's ingestion alike. Records go there or nowhere (with a warning by
the caller): never to a directory the controller does not read.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from slurmopt.lazylog import get_logger

log = get_logger(__name__)

SHARED_SPOOL = "/var/spool/slurmopt"
ENV_SPOOL = ("SLURMOPT_SPOOL_DIR", "SLURMOPT_SPOOL")


class SpoolError(OSError):
    """The spool cannot take the record (the message says which directory and why)."""


def user_spool(env: Mapping[str, str] | None = None) -> str:
    """The user's own spool: ``$XDG_STATE_HOME/slurmopt/spool`` (personal setups)."""
    env = os.environ if env is None else env
    home = os.path.expanduser(env.get("HOME", "~"))
    xdg = env.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state")
    return os.path.join(xdg, "slurmopt", "spool")


def spool_dir(
    configured: str, env: Mapping[str, str] | None = None, *, euid: int | None = None
) -> str:
    """THE spool directory: where optsub appends and what the controller ingests.

    The one place that decides it, for the writer (optsub, with ``[optsub]
    spool_dir``, which defaults to ``[history] spool_dir``) and the reader
    (``HistoryConfig.resolved_spool``, with ``[history] spool_dir``):
    ``$SLURMOPT_SPOOL_DIR``, ``$SLURMOPT_SPOOL``, the configured directory,
    the shared spool ``/var/spool/slurmopt`` when it exists (or for root),
    else the user's own spool (a personal setup, whose controller runs as
    the same user). There is no fallback: a record the controller would not
    ingest is not written (the caller warns instead).
    """
    env = os.environ if env is None else env
    for key in ENV_SPOOL:
        if env.get(key):
            return env[key]
    if configured:
        return configured
    euid = os.geteuid() if euid is None else euid
    if euid == 0 or os.path.isdir(SHARED_SPOOL):
        return SHARED_SPOOL
    return user_spool(env)


def spool_dirs(configured: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The directories optsub's overlay of recent submissions reads (the one spool)."""
    return [spool_dir(configured, env)]


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


def _ensure_dir(d: str, env: Mapping[str, str] | None) -> None:
    """Create the user's own spool when missing; any other spool is the admin's to create.

    Raises:
        SpoolError: the directory is missing and not the user's own.
    """
    if os.path.isdir(d):
        return
    if os.path.normpath(d) != os.path.normpath(user_spool(env)):
        raise SpoolError(f"spool {d} does not exist (an admin creates it, mode 1777)")
    os.makedirs(d, mode=0o700, exist_ok=True)


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


def append(
    record: Mapping[str, Any],
    directory: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
) -> str:
    """Append ``record`` as one line to the spool ``directory``; return the file.

    The user's own spool (:func:`user_spool`) is created when missing; another
    directory must exist. Nothing is written anywhere else.

    Raises:
        OSError: the spool cannot take the record (:class:`SpoolError` or the
            system's error: read-only, permission denied, disk full).
    """
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    d = os.fspath(directory)
    _ensure_dir(d, env)
    path, fd = _open_own(d, _user())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.write(fd, line) != len(line):
            raise SpoolError(f"spool {d}: short write (disk full?)")
        return path
    finally:
        os.close(fd)


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a spool file (tests and tools)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
