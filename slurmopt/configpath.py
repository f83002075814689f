"""Where the layered configuration is searched: the one search path (standard library only).

Used by :mod:`slurmopt.config` (every command) and :mod:`slurmopt.optsub.config`
(the submit path, which must not import :mod:`pathlib` or the section registry).
Order, later files winning key by key:

1. ``/etc/slurmopt/slurmopt.toml``;
2. drop-ins ``/etc/slurmopt/conf.d/*.toml`` in name order (hidden files skipped);
3. the user's ``$XDG_CONFIG_HOME/slurmopt/slurmopt.toml`` (``~/.config/...``);
4. ``$SLURMOPT_CONFIG``: a file the user named, so it must exist.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SYSTEM_DIR = "/etc/slurmopt"
ENV_CONFIG = "SLURMOPT_CONFIG"


def search_path(env: Mapping[str, str] | None = None) -> list[tuple[str, bool]]:
    """The configuration files in search order, each with whether it must exist."""
    env = os.environ if env is None else env
    files = [(os.path.join(SYSTEM_DIR, "slurmopt.toml"), False)]
    confd = os.path.join(SYSTEM_DIR, "conf.d")
    if os.path.isdir(confd):
        names = sorted(n for n in os.listdir(confd) if n.endswith(".toml") and n[0] != ".")
        files += [(os.path.join(confd, n), False) for n in names]
    home = os.path.expanduser(env.get("HOME", "~"))
    xdg = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files.append((os.path.join(xdg, "slurmopt", "slurmopt.toml"), False))
    if env.get(ENV_CONFIG):
        files.append((env[ENV_CONFIG], True))
    return files
