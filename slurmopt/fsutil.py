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
    os.makedirs(parent, exist_ok=True)
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
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
