"""The controller's state cache: the last snapshot as JSON, with the time it was written.

Standard library only: optsub reads it on the submit path. The controller
writes it after every successful read of the cluster (:func:`write_cache`,
atomic: a temporary file in the same directory, fsync, then ``os.replace``, so
a reader sees the old file or the new one, never half of one). optsub reads it
with :func:`read_cache`, which refuses a file older than the allowed age.

File format (``format`` 1)::

    {"format": 1, "written_at": 1764270000.5, "snapshot": {<Snapshot.to_dict()>},
     "runtimes": {"1234": 3600.0, ...}, "queue": {<queue digest>}}

``written_at`` is the writer's clock (epoch seconds); the snapshot carries its
own ``taken_at``. ``runtimes`` (optional) are the controller's predicted
runtimes in seconds by job id, from the history database when ``[history]
use_predictions`` is on (running jobs: total runtime; pending: at the speed of
the slowest partition they list), as :meth:`slurmopt.optimize.problem.Problem.build`
takes them. Freshness is judged on ``snapshot.taken_at`` (the age of the
data, not of the file).

``queue`` (optional, since issue 16) is the controller's digest of the pending
queue (:func:`slurmopt.optimize.ranking.queue_digest`: each node's free
resources over time once every pending job is scheduled); a cache with it holds
only the non-pending jobs in ``snapshot`` (the digest lists the pending ids), so
that optsub reads and schedules no queue on its submit path.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slurmopt.lazylog import get_logger
from slurmopt.model import JobState, Snapshot

if TYPE_CHECKING:
    from pathlib import Path

log = get_logger(__name__)

CACHE_FORMAT = 1
ENV_CACHE = "SLURMOPT_STATE_CACHE"
DEFAULT_CACHE = "/var/lib/slurmopt/state-cache.json"


class CacheError(Exception):
    """The cache is missing, unreadable, corrupt or too old (the caller reads live)."""

    stale: Snapshot | None = None
    """Set when the cache was only too old: its snapshot (the caller may still use what
    changes slowly, the QOS limits and the associations)."""


def default_cache_file(env: Mapping[str, str] | None = None) -> str:
    """``$SLURMOPT_STATE_CACHE``, else ``/var/lib/slurmopt/state-cache.json`` (a string).

    optsub uses this form: its submit path does not import :mod:`pathlib`.
    """
    env = os.environ if env is None else env
    return env.get(ENV_CACHE) or DEFAULT_CACHE


def default_cache_path(env: Mapping[str, str] | None = None) -> Path:
    """:func:`default_cache_file` as a :class:`~pathlib.Path`."""
    from pathlib import Path

    return Path(default_cache_file(env))


def write_cache(
    snapshot: Snapshot,
    path: str | os.PathLike[str],
    *,
    now: float | None = None,
    runtimes: Mapping[int, float] | None = None,
    queue: Mapping[str, object] | None = None,
    limit_ratio: Mapping[str, float] | None = None,
) -> None:
    """Write ``snapshot`` (and predicted ``runtimes``, the ``queue`` digest, the
    ``limit_ratio`` the controller ranks with) atomically to ``path`` (mode 0644).

    Raises:
        OSError: the directory is not writable.
    """
    payload: dict[str, object] = {
        "format": CACHE_FORMAT,
        "written_at": time.time() if now is None else now,
        "snapshot": snapshot.to_dict(),
    }
    if runtimes:
        payload["runtimes"] = {str(k): round(float(v), 1) for k, v in sorted(runtimes.items())}
    if queue is not None:
        payload["queue"] = dict(queue)
    if limit_ratio:
        payload["limit_ratio"] = {str(k): float(v) for k, v in sorted(limit_ratio.items())}
    from slurmopt.fsutil import write_atomic  # not on optsub's read path

    write_atomic(path, json.dumps(payload, separators=(",", ":")))


def read_cache(
    path: str | os.PathLike[str],
    *,
    max_age_s: float,
    now: float | None = None,
    active_only: bool = False,
) -> tuple[Snapshot, dict[int, float]]:
    """Read the cache and check its freshness: the snapshot and the predicted runtimes.

    See :func:`read_state` (which also returns the queue digest).
    """
    snap, runtimes, _ = read_state(path, max_age_s=max_age_s, now=now, active_only=active_only)
    return snap, runtimes


def read_state(
    path: str | os.PathLike[str],
    *,
    max_age_s: float,
    now: float | None = None,
    active_only: bool = False,
    limit_ratio: dict[str, float] | None = None,
) -> tuple[Snapshot, dict[int, float], dict[str, Any] | None]:
    """Read the cache and check its freshness: the snapshot, the predicted runtimes and
    the queue digest (None: the cache has none, or a malformed one). ``limit_ratio``,
    when given, receives the cache's valid shares (partition -> (0, 1]).

    Predicted runtimes of jobs the snapshot does not hold (or left out with
    ``active_only``), and malformed entries, are dropped.

    ``active_only`` leaves out finished jobs before building the model (optsub:
    they play no part in a placement, and building them costs time).

    Raises:
        CacheError: missing, unreadable, writable by someone else than root (or the
            reader), not JSON, wrong format, or older than ``max_age_s``
            (a snapshot from the future by more than a minute is also refused).
    """
    now = time.time() if now is None else now
    try:
        with open(path, encoding="utf-8") as fh:
            st = os.fstat(fh.fileno())
            if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
                # written by root only: one a user could write is not believed (docs/security.md)
                raise CacheError(
                    f"state cache {path} is owned by uid {st.st_uid} with mode "
                    f"{st.st_mode & 0o777:o}: not used (root writes it, nobody else may)"
                )
            data = json.load(fh)
    except FileNotFoundError:
        raise CacheError(f"no state cache at {path}") from None
    except (OSError, ValueError) as exc:
        raise CacheError(f"state cache {path} unreadable: {exc}") from exc
    except RecursionError:
        raise CacheError(f"state cache {path} unreadable: JSON nested too deeply") from None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise CacheError(f"state cache {path}: unknown format")
    try:
        raw = data["snapshot"]
        if active_only and isinstance(raw, dict) and isinstance(raw.get("jobs"), list):
            # finished jobs (squeue keeps them for MinJobAge) play no part in a placement
            raw = {**raw, "jobs": [j for j in raw["jobs"] if _active(j)]}
        snap = Snapshot.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise CacheError(f"state cache {path}: malformed snapshot: {exc}") from exc
    age = now - snap.taken_at
    if age > max_age_s:
        old = CacheError(f"state cache {path} is {age:.0f} s old (max {max_age_s:.0f} s)")
        old.stale = snap
        raise old
    if age < -60:
        raise CacheError(f"state cache {path} is from the future ({-age:.0f} s)")
    queue = data.get("queue")
    if limit_ratio is not None:
        limit_ratio.update(_ratios(data.get("limit_ratio")))
    return (
        snap,
        _runtimes(data.get("runtimes"), {j.job_id for j in snap.jobs}),
        queue if isinstance(queue, dict) else None,
    )


def _ratios(raw: object) -> dict[str, float]:
    if not isinstance(raw, dict):
        return {}
    out: dict[str, float] = {}
    for k, v in raw.items():
        if isinstance(k, str) and isinstance(v, int | float) and 0 < v <= 1:
            out[k] = float(v)
    return out


def _runtimes(raw: object, known: set[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    if not isinstance(raw, dict):
        return out
    for k, v in raw.items():
        try:
            job_id, seconds = int(k), float(v)
        except (TypeError, ValueError):
            continue
        if job_id in known and seconds > 0 and math.isfinite(seconds):
            out[job_id] = seconds
    return out


_ACTIVE = frozenset(s.value for s in JobState if s.active)


def _active(job: object) -> bool:
    return not isinstance(job, dict) or str(job.get("state", "")).upper() in _ACTIVE
