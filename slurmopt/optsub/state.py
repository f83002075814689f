"""The cluster state optsub decides on: the controller's cache when fresh, else a live read."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from slurmopt.errors import SlurmUnavailable
from slurmopt.model import Snapshot
from slurmopt.optsub.config import ENV_FAULT, OptsubConfig
from slurmopt.statecache import CacheError, default_cache_path, read_cache

log = logging.getLogger(__name__)


def cache_path(cfg: OptsubConfig, env: Mapping[str, str] | None = None) -> Path:
    """The state cache optsub reads: the config's path, else the default."""
    return Path(cfg.cache_path) if cfg.cache_path else default_cache_path(env)


def get_state(
    cfg: OptsubConfig, *, now: float, env: Mapping[str, str] | None = None
) -> tuple[Snapshot, str]:
    """The snapshot to decide on and where it came from (``cache <path>`` or ``live``).

    Raises:
        SlurmUnavailable: no fresh cache and the live read failed or is disabled.
        SlurmoptError: the live read failed otherwise (parse error, command error).
    """
    env = os.environ if env is None else env
    if env.get(ENV_FAULT) == "state":
        raise SlurmUnavailable("injected state fault (SLURMOPT_OPTSUB_FAULT=state)")
    path = cache_path(cfg, env)
    try:
        return read_cache(path, max_age_s=cfg.cache_max_age_s, now=now), f"cache {path}"
    except CacheError as exc:
        reason = str(exc)
        log.debug("state cache not used: %s", reason)
    if not cfg.live_read:
        raise SlurmUnavailable(f"{reason}, and live reads are disabled")
    from slurmopt.slurm.backend import get_backend

    return get_backend().snapshot(), "live"
