"""The cluster state optsub decides on: the controller's cache when fresh, else a live read."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from slurmopt.errors import SlurmUnavailable
from slurmopt.model import Job, JobRequest, JobState, Snapshot
from slurmopt.optsub.config import ENV_FAULT, OptsubConfig
from slurmopt.optsub.spool import spool_dirs
from slurmopt.statecache import CacheError, default_cache_file, read_cache

log = logging.getLogger(__name__)

TAIL_BYTES = 65536
"""How much of the end of each spool file is read for submissions newer than the cache."""


def cache_path(cfg: OptsubConfig, env: Mapping[str, str] | None = None) -> str:
    """The state cache optsub reads: the config's path, else the default."""
    return cfg.cache_path or default_cache_file(env)


def get_state(
    cfg: OptsubConfig, *, now: float, env: Mapping[str, str] | None = None
) -> tuple[Snapshot, str, dict[int, float]]:
    """The snapshot to decide on, where it came from (``cache <path>`` or ``live``), and
    the controller's predicted runtimes by job id (from the cache; none on a live read).

    Raises:
        SlurmUnavailable: no fresh cache and the live read failed or is disabled.
        SlurmoptError: the live read failed otherwise (parse error, command error).
    """
    env = os.environ if env is None else env
    if env.get(ENV_FAULT) == "state":
        raise SlurmUnavailable("injected state fault (SLURMOPT_OPTSUB_FAULT=state)")
    path = cache_path(cfg, env)
    try:
        snap, runtimes = read_cache(path, max_age_s=cfg.cache_max_age_s, now=now, active_only=True)
        source = f"cache {path}"
        if runtimes:
            source += f" ({len(runtimes)} predicted runtime(s))"
        recent = recent_submissions(spool_dirs(cfg.spool_dir, env), since=snap.taken_at)
        if recent:
            snap = with_recent(snap, recent)
            source += f" + {len(recent)} newer optsub submission(s)"
        return snap, source, runtimes
    except CacheError as exc:
        reason = str(exc)
        log.debug("state cache not used: %s", reason)
    if not cfg.live_read:
        raise SlurmUnavailable(f"{reason}, and live reads are disabled")
    from slurmopt.slurm.backend import get_backend

    return get_backend().snapshot(), "live", {}


def recent_submissions(dirs: list[str], *, since: float) -> list[dict[str, Any]]:
    """optsub's own placements recorded in the spool at or after ``since`` (newest files' tails).

    A burst of submissions between two controller cycles all see the same
    cache; counting the ones already placed keeps them from piling onto the
    partition that looked best at the cache's time. Unreadable lines and files
    are skipped (this only refines a decision).
    """
    out: dict[int, dict[str, Any]] = {}
    for d in dirs:
        try:
            names = [n for n in os.listdir(d) if n.startswith("optsub-")]
        except OSError:
            continue
        for name in names:
            for rec in _tail_records(os.path.join(d, name)):
                data = rec.get("data")
                job_id = rec.get("job_id")
                at = rec.get("at")
                if not (isinstance(data, dict) and isinstance(job_id, int)):
                    continue
                if not isinstance(at, int | float) or at < since:
                    continue
                if data.get("sbatch_rc") == 0 and data.get("partition") and data.get("request"):
                    out[job_id] = rec
    return [out[k] for k in sorted(out)]


def _tail_records(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            chunk = fh.read()
    except OSError:
        return []
    lines = chunk.split(b"\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line is cut
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def with_recent(snap: Snapshot, records: list[dict[str, Any]]) -> Snapshot:
    """``snap`` plus the recent submissions as pending jobs where optsub sent them."""
    known = {j.job_id for j in snap.jobs}
    fields = set(JobRequest.__dataclass_fields__)
    extra = []
    for rec in records:
        data = rec["data"]
        if rec["job_id"] in known:
            continue
        try:
            request = JobRequest(**{k: v for k, v in data["request"].items() if k in fields})
        except TypeError:
            continue
        extra.append(
            Job(
                job_id=int(rec["job_id"]),
                name="optsub",
                user=str(rec.get("user") or ""),
                state=JobState.PENDING,
                partitions=(str(data["partition"]),),
                request=request,
                held=bool(data.get("held")),
                submit_time=int(rec["at"]),
            )
        )
    if not extra:
        return snap
    return replace(snap, jobs=snap.jobs + tuple(extra))
