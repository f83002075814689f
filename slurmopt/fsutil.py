"""Atomic file writes and the TOML reader (standard library only, no pathlib: optsub imports
nothing heavy)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from slurmopt.errors import ConfigError


def write_atomic(path: str | os.PathLike[str], text: str, *, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    A temporary file in the same directory is written, fsynced, given ``mode``
    and renamed over ``path``; missing parent directories are created.

    Raises:
        OSError: the directory is not writable.
    """
    import tempfile

    target = os.fspath(path)
    parent = os.path.dirname(target) or "."
    os.makedirs(parent, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_toml(path: str | os.PathLike[str], *, required: bool) -> dict[str, Any]:
    """A configuration file's tables; ``{}`` when it is missing and not ``required``.

    Raises:
        ConfigError: a required file is missing, the file is unreadable, or not valid TOML.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; tomllib only imported when needed
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: config file not found") from None
        return {}
    except PermissionError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    import tomllib

    with fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: not UTF-8 text (byte {exc.start})") from None
        except RecursionError:
            raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc}") from exc


# --- reading files that other users can write (see docs/security.md) ---------------------

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class Refused(Exception):
    """A file or directory was not used for a trust reason (``why`` says which)."""

    def __init__(self, why: str, *, uid: int | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.uid = uid


def open_dir_nofollow(path: str | os.PathLike[str]) -> int:
    """A descriptor of directory ``path``, refusing a symlink as its last component.

    The directory must be owned by root or by the caller, and if others may
    write to it, it must be sticky (as ``/tmp``): otherwise anyone could swap
    files under a reader.

    Raises:
        FileNotFoundError: it does not exist.
        Refused: a symlink, not a directory, owned by another user, or writable
            by others without the sticky bit.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        import errno

        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(f"{os.fspath(path)}: a symlink or not a directory") from None
        raise
    st = os.fstat(fd)
    why = None
    if st.st_uid not in (0, os.geteuid()):
        why = f"{os.fspath(path)}: owned by uid {st.st_uid}, not root"
    elif st.st_mode & (stat.S_IWOTH | stat.S_IWGRP) and not st.st_mode & stat.S_ISVTX:
        why = f"{os.fspath(path)}: writable by others without the sticky bit"
    if why:
        os.close(fd)
        raise Refused(why, uid=st.st_uid)
    return fd


def open_regular_at(dir_fd: int, name: str) -> tuple[int, os.stat_result]:
    """Open ``name`` in ``dir_fd`` for reading without following a symlink or blocking.

    Only a regular file with exactly one link is returned (a hard link to
    another file, a FIFO, a device or a socket is refused). ``O_NONBLOCK``
    keeps a FIFO from blocking the open.

    Raises:
        FileNotFoundError: the name vanished.
        Refused: a symlink, not a regular file, or more than one link.
    """
    import errno
    import stat

    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        try:
            uid: int | None = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_uid
        except OSError:
            uid = None
        if exc.errno == errno.ELOOP:
            raise Refused("a symlink", uid=uid) from None
        raise Refused(f"cannot open: {exc.strerror}", uid=uid) from None
    st = os.fstat(fd)
    why = None
    if not stat.S_ISREG(st.st_mode):
        why = "not a regular file"
    elif st.st_nlink != 1:
        why = f"{st.st_nlink} hard links"
    if why:
        os.close(fd)
        raise Refused(why, uid=st.st_uid)
    return fd, st


def read_lines_bounded(fd: int, *, max_bytes: int, max_line: int) -> tuple[list[bytes], int, bool]:
    """The lines of an open file, reading at most ``max_bytes``.

    Returns ``(lines, too_long, truncated)``: lines longer than ``max_line``
    are dropped (never held whole in memory) and counted in ``too_long``;
    ``truncated`` is True when the file holds more than ``max_bytes``.
    """
    lines: list[bytes] = []
    too_long = 0
    buf = b""
    skipping = False
    total = 0
    while total < max_bytes:
        chunk = os.read(fd, min(1 << 20, max_bytes - total))
        if not chunk:
            break
        total += len(chunk)
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            if skipping:
                pass
            elif nl > max_line:
                too_long += 1
            else:
                lines.append(buf[:nl])
            skipping = False
            buf = buf[nl + 1 :]
        if len(buf) > max_line:
            if not skipping:
                too_long += 1
            skipping = True
            buf = b""
    truncated = total >= max_bytes and bool(os.read(fd, 1))
    if buf and not skipping and not truncated:
        lines.append(buf)
    return lines, too_long, truncated


def json_depth(obj: Any, limit: int) -> int:
    """The nesting depth of a parsed JSON value, counting no further than ``limit + 1``."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        if not isinstance(v, dict | list):
            continue
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def writable_by_others(  # noqa: PLR0911  one return per reason a file is unsafe to trust
    path: str | os.PathLike[str], *, trusted: tuple[int, ...] = (0,)
) -> str | None:
    """Why ``path`` (a file) could be changed by someone not in ``trusted`` (None: it cannot).

    Checks the file (owner, group/other write bits) and its directory (owner,
    and write bits without the sticky bit, which would let anyone replace it).
    A missing file gives None.
    """
    import stat

    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError:
        return None
    if st.st_uid not in trusted:
        return f"{p} is owned by uid {st.st_uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{p} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    d = os.path.dirname(os.path.abspath(p))
    try:
        ds = os.stat(d)
    except OSError:
        return None
    if ds.st_uid not in trusted:
        return f"its directory {d} is owned by uid {ds.st_uid}"
    if ds.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not ds.st_mode & stat.S_ISVTX:
        return f"its directory {d} is writable by others (mode {stat.S_IMODE(ds.st_mode):o})"
    return None
