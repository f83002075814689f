"""``slurmopt config check``'s file-mode warnings: the install the trust model needs.

docs/security.md lists who may write each file slurmopt reads; this module
checks a host against it. Each warning is one line naming the path, what is
wrong and what the install notes (README) say it should be. Missing paths the
controller creates itself are not warned about.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from slurmopt.fsutil import writable_by_others


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def _root_file(p: Path, what: str, *, private: bool = False) -> list[str]:
    """A file only root may write (and, if ``private``, only root may read)."""
    out = []
    why = writable_by_others(p)
    if why:
        out.append(f"{what}: {why}; it must be root's, mode {'0600' if private else '0644'}")
    if private and p.exists() and _mode(p) & 0o077:
        out.append(f"{what}: {p} has mode {_mode(p):o}: other users can read it; use 0600")
    return out


def spool_warnings(spool: Path) -> list[str]:
    """The shared spool: a root-owned directory, mode 1777 (users add files, only owners remove)."""
    if not spool.exists() and not spool.is_symlink():
        return [
            f"spool: {spool} does not exist (mkdir -m 1777 {spool}); until it does, optsub "
            "records nothing the controller reads (configured: nothing, one warning per "
            "submission; unconfigured: each user's own spool)"
        ]
    if spool.is_symlink():
        return [f"spool: {spool} is a symlink; the controller refuses it (use the real directory)"]
    st = os.stat(spool)
    out = []
    if st.st_uid != 0:
        out.append(f"spool: {spool} is owned by uid {st.st_uid}; it must be root's")
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        out.append(f"spool: {spool} is world-writable without the sticky bit; chmod 1777")
    elif not st.st_mode & stat.S_IWOTH:
        out.append(f"spool: {spool} has mode {_mode(spool):o}: users cannot write it; chmod 1777")
    bad = spool / "bad"
    if bad.exists() and (os.lstat(bad).st_uid != 0 or _mode(bad) & 0o022 or bad.is_symlink()):
        out.append(f"spool: {bad} is not root's own 0700 directory; remove it (it is recreated)")
    return out


def install_warnings(loaded: Any, env: dict[str, str] | None = None) -> list[str]:
    """Every file-mode problem of this host's install (empty: as the model needs).

    Args:
        loaded: the effective configuration (:func:`slurmopt.config.load`).
        env: the environment (default ``os.environ``).
    """
    from slurmopt.history.config import default_state_dir
    from slurmopt.statecache import default_cache_path

    env = dict(os.environ) if env is None else env
    ctl = loaded["controller"]
    hist = loaded["history"]
    state = default_state_dir(env)
    out: list[str] = []
    out += spool_warnings(hist.resolved_spool(env))
    out += _spool_agreement(loaded, env)
    cache = Path(ctl.state_cache) if ctl.state_cache else default_cache_path(env)
    out += _root_file(cache, "state cache")
    routing = Path(ctl.routing_file or env.get("SLURMOPT_ROUTING_FILE") or state / "routing.txt")
    out += _root_file(routing, "routing file")
    out += _root_file(Path(ctl.lock_file) if ctl.lock_file else state / "controller.lock", "lock")
    kill = Path(ctl.kill_switch)
    why = writable_by_others(kill.parent / ".") if kill.parent.exists() else None
    if why:
        out.append(f"kill switch: {why}; a user could stop or restart the controller")
    out += _database_warnings(hist.resolved_url(env))
    for name in ("protected_hardlinks", "protected_symlinks"):
        try:
            value = Path(f"/proc/sys/fs/{name}").read_text().strip()
        except OSError:
            continue
        if value == "0":
            out.append(f"sysctl fs.{name} = 0: set it to 1 (defense in depth for the spool)")
    for src in sorted({s for s in loaded.sources.values() if s not in ("default", "override")}):
        why = writable_by_others(src)
        if why:
            out.append(f"config: {why}; root does not read it (root's files: mode 0644)")
    return out


def _spool_agreement(loaded: Any, env: dict[str, str]) -> list[str]:
    """optsub's spool (``[optsub] spool_dir``, default ``[history] spool_dir``) must be the
    directory the controller ingests, or its records are never read."""
    from slurmopt.optsub.spool import spool_dir

    hist = loaded["history"]
    writes = spool_dir(loaded["optsub"].spool_dir or hist.spool_dir, env)
    reads = str(hist.resolved_spool(env))
    if os.path.normpath(writes) == os.path.normpath(reads):
        return []
    return [
        f"spool: optsub writes to {writes} ([optsub] spool_dir) but the controller ingests "
        f"{reads} ([history] spool_dir): set one of them (optsub uses [history] spool_dir "
        "when [optsub] spool_dir is empty)"
    ]


def _database_warnings(url_text: str) -> list[str]:
    """The SQLite history file's owner and mode; nothing without the [controller] extra."""
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # a login node: no history database here
        return []
    url = make_url(url_text)
    if url.drivername.startswith("sqlite") and url.database:
        return _root_file(Path(url.database), "history database", private=True)
    return []
