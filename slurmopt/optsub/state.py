"""The cluster state optsub decides on: the controller's cache when fresh, else a live read."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from slurmopt.errors import SlurmoptError, SlurmUnavailable
from slurmopt.lazylog import get_logger
from slurmopt.model import Job, JobRequest, JobState, Snapshot
from slurmopt.optsub.config import ENV_FAULT, OptsubConfig
from slurmopt.optsub.spool import spool_dirs
from slurmopt.statecache import CacheError, default_cache_file, read_state

if TYPE_CHECKING:
    from slurmopt.slurm import live as live_mod

log = get_logger(__name__)

ACCOUNTING_MAX_AGE_S = 3600.0
"""A cache too old for the cluster state still gives its QOS limits and associations
to a live read for this long."""

TAIL_BYTES = 65536
"""How much of the end of each spool file is read for submissions newer than the cache."""


def cache_path(cfg: OptsubConfig, env: Mapping[str, str] | None = None) -> str:
    """The state cache optsub reads: the config's path, else the default."""
    return cfg.cache_path or default_cache_file(env)


class State(NamedTuple):
    """What optsub decides on (:func:`get_state_full`)."""

    snapshot: Snapshot
    source: str
    runtimes: dict[int, float]
    queue: tuple[dict[str, Any], Snapshot] | None = None
    """The controller's queue digest and the cached snapshot it goes with (before the
    live refresh), for :func:`slurmopt.optimize.ranking.use_digest`; None: no digest."""
    limit_ratio: dict[str, float] | None = None
    """The share of their limits running jobs are expected to use, as the controller
    learned it (:attr:`slurmopt.optimize.config.OptimizeConfig.limit_ratio`); None: none."""


def get_state(
    cfg: OptsubConfig, *, now: float, env: Mapping[str, str] | None = None, user: str = ""
) -> tuple[Snapshot, str, dict[int, float]]:
    """:func:`get_state_full` without the queue digest."""
    st = get_state_full(cfg, now=now, env=env, user=user)
    return st.snapshot, st.source, st.runtimes


def get_state_full(
    cfg: OptsubConfig,
    *,
    now: float,
    env: Mapping[str, str] | None = None,
    user: str = "",
    started: live_mod.Started | None = None,
) -> State:
    """The snapshot to decide on, where it came from (``cache <path>`` or ``live``), and
    the controller's predicted runtimes by job id (from the cache; none on a live read).

    A cached snapshot gets optsub's newer submissions (from the spool), then,
    with ``live_refresh``, the live corrections of :mod:`.fresh`: one ``squeue``
    (jobs that ended or started since), whose answer also serves the overlay's
    check of other users' records (no second squeue). A failed refresh keeps
    the cached view (the source says why). ``user`` is the submitting user (for
    the ``PrivateData`` check of the refresh). ``started``: the refresh's squeue,
    already started by the caller (who discards it afterwards when it was not used;
    it is not used when it started before the cached snapshot was taken).

    Raises:
        SlurmUnavailable: no fresh cache and the live read failed or is disabled.
        SlurmoptError: the live read failed otherwise (parse error, command error).
    """
    env = os.environ if env is None else env
    if env.get(ENV_FAULT) == "state":
        raise SlurmUnavailable("injected state fault (SLURMOPT_OPTSUB_FAULT=state)")
    path = cache_path(cfg, env)
    try:
        ratio: dict[str, float] = {}
        snap, runtimes, digest = read_state(
            path, max_age_s=cfg.cache_max_age_s, now=now, active_only=True, limit_ratio=ratio
        )
        source = f"cache {path}"
        if runtimes:
            source += f" ({len(runtimes)} predicted runtime(s))"
        if ratio:
            source += " (limit shares " + ",".join(f"{k} {v:g}" for k, v in ratio.items()) + ")"
        in_digest: set[int] = set()
        if digest is not None:
            in_digest = {int(x) for x in digest.get("pending", ()) if isinstance(x, int)}
            source += f" (queue digest: {len(in_digest)} pending)"
        before = snap
        cached = [j.job_id for j in snap.jobs]
        live: dict[int, Any] | None = None
        note = ""
        if cfg.live_refresh:
            if started is not None and started.at < snap.taken_at + 1:
                # started before (or in the second of) the controller's read: its answer
                # may be older than the cache, and the refresh must be newer. Run it again.
                started.discard()
                started = None
            live, note = read_live(cfg, env, started)
        pending_of = None if live is None else _pending_from(live)
        refused: list[str] = []
        recent = recent_submissions(
            spool_dirs(cfg.spool_dir, env),
            since=snap.taken_at,
            pending_of=pending_of,
            refused=refused,
        )
        recent = [r for r in recent if r["job_id"] not in in_digest]
        if recent:
            snap = with_recent(snap, recent)
            source += f" + {len(recent)} newer optsub submission(s)"
        if refused:  # counted where the user sees it (--optsub-explain, --optsub-json)
            source += f" ({len(refused)} spool record(s) of other users not counted)"
        if live is not None:
            from slurmopt.optsub.fresh import apply_live

            snap, note = apply_live(
                snap, live, now=now, user=user, cached=cached, accounted=in_digest
            )
        if note:
            source += f"; {note}"
        queue = None if digest is None else (digest, before)
        return State(snap, source, runtimes, queue, ratio or None)
    except CacheError as exc:
        reason = str(exc)
        stale = exc.stale
        log.debug("state cache not used: %s", reason)
    if not cfg.live_read:
        raise SlurmUnavailable(f"{reason}, and live reads are disabled")
    return live_state(stale, now)


def live_state(stale: Snapshot | None, now: float) -> State:
    """A live read; the QOS limits and associations of ``stale`` (a cache too old for the
    rest) are used instead of reading them again where it is at most
    :data:`ACCOUNTING_MAX_AGE_S` old (they change rarely and cost ~0.25 s: sacctmgr)."""
    from slurmopt.slurm.backend import get_backend

    backend = get_backend()
    source = "live"
    age = None if stale is None else now - stale.taken_at
    if (
        stale is not None
        and age is not None
        and (stale.qos or stale.associations)
        and age <= ACCOUNTING_MAX_AGE_S
        and hasattr(backend, "accounting_hint")
    ):
        backend.accounting_hint = (stale.qos, stale.associations)
        source = f"live (QOS limits and associations from the cache, {age:.0f} s old)"
    return State(backend.snapshot(), source, {})


def squeue_command(cfg: OptsubConfig, env: Mapping[str, str]) -> str:
    """``$SLURMOPT_SQUEUE``, else the squeue beside the configured sbatch, else ``squeue``."""
    from slurmopt.slurm.live import squeue_command as command

    return command(cfg.sbatch, env)


def read_live(
    cfg: OptsubConfig, env: Mapping[str, str], started: live_mod.Started | None = None
) -> tuple[dict[int, Any] | None, str]:
    """Every active job by id (:func:`slurmopt.slurm.live.read_live`), or None and why not;
    ``started``: the squeue already started (else one is run now).

    Never raises for Slurm's sake: a failed or slow squeue means no refresh.
    """
    import subprocess

    from slurmopt.slurm import live

    timeout = max(0.2, min(1.0, cfg.decision_timeout_s / 3.0))
    try:
        run = started if started is not None else live.Started(squeue_command(cfg, env), env)
        return dict(run.result(timeout)), ""
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return None, f"live refresh failed ({type(exc).__name__})"


def _pending_from(live: Mapping[int, Any]) -> Callable[[Iterable[str]], dict[int, tuple[str, str]]]:
    """The overlay's ``pending_of`` answered from the refresh's squeue."""

    def pending_of(users: Iterable[str]) -> dict[int, tuple[str, str]]:
        want = set(users)
        return {
            k: (j.user, j.partition) for k, j in live.items() if j.state == "PD" and j.user in want
        }

    return pending_of


OVERLAY_MAX_PER_USER = 64
"""At most this many recent records of one other user are counted (newest first)."""

OVERLAY_MAX_FILES = 4096
"""At most this many spool directory entries are looked at."""

OVERLAY_MAX_FILES_PER_USER = 16
"""At most this many files of one owner are opened (a user has one, plus claimed ones)."""


def recent_submissions(
    dirs: list[str],
    *,
    since: float,
    pending_of: Callable[[Iterable[str]], Mapping[int, tuple[str, str]]] | None = None,
    refused: list[str] | None = None,
) -> list[dict[str, Any]]:
    """optsub's placements recorded in the spool at or after ``since`` (newest files' tails).

    A burst of submissions between two controller cycles all see the same
    cache; counting the ones already placed keeps them from piling onto the
    partition that looked best at the cache's time. Unreadable lines and files
    are skipped (this only refines a decision).

    Only attributable records count (docs/security.md): a file is opened
    without following symlinks or blocking, must be a regular single-link file
    named after its owner, and each record's ``user`` must be that owner. The
    caller's own records count as they are; another user's count only for jobs
    Slurm has pending for that user in the partition the record names (one
    ``squeue`` call, ``pending_of``), at most :data:`OVERLAY_MAX_PER_USER` of
    them: one user's file cannot weigh more than that user's real pending jobs.
    ``refused`` receives one line (who, job, why) per record of another user not counted.
    """
    from slurmopt import trust

    me = trust.me()
    by_owner: dict[str, dict[int, dict[str, Any]]] = {}
    for d in dirs:
        for owner, rec in _attributable(d, since, refused):
            by_owner.setdefault(owner, {})[rec["job_id"]] = rec
    out = dict(by_owner.pop(me, {}))
    if by_owner:
        try:
            pending = (pending_of or _pending_of)(sorted(by_owner))
        except SlurmoptError as exc:
            log.debug("other users' recent submissions not counted: %s", exc)
            pending = {}
        for u, recs in by_owner.items():
            counted = []
            for rec in sorted(recs.values(), key=lambda r: r["at"]):
                slurm = pending.get(rec["job_id"])
                if slurm is not None and str(rec["data"]["partition"]) not in slurm[1].split(","):
                    slurm = None  # not pending where the record says
                why = trust.overlay_refusal(
                    rec, owner=u, me=me, slurm_owner=None if slurm is None else slurm[0]
                )
                if why is None:
                    counted.append(rec)
                else:
                    log.debug("recent submission %s of %s not counted: %s", rec["job_id"], u, why)
                    if refused is not None:
                        refused.append(f"{u}: job {rec['job_id']}: {why}")
            for rec in counted[-OVERLAY_MAX_PER_USER:]:
                out.setdefault(rec["job_id"], rec)
    return [out[k] for k in sorted(out)]


def _pending_of(users: Iterable[str]) -> Mapping[int, tuple[str, str]]:
    from slurmopt.slurm.owners import pending_jobs_of

    return pending_jobs_of(users)


def _spool_names(dfd: int) -> list[str]:
    """The ``optsub-*`` names in the directory, at most a few per owner (a flood costs its
    owner only)."""
    names: list[str] = []
    per_uid: dict[int, int] = {}
    with os.scandir(dfd) as it:
        for _, e in zip(range(OVERLAY_MAX_FILES), it, strict=False):
            if not e.name.startswith("optsub-"):
                continue
            try:
                uid = e.stat(follow_symlinks=False).st_uid
            except OSError:
                continue
            per_uid[uid] = per_uid.get(uid, 0) + 1
            if per_uid[uid] <= OVERLAY_MAX_FILES_PER_USER:
                names.append(e.name)
    return names


def _attributable(
    d: str, since: float, refused: list[str] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, record) for the usable recent records of the spool files in ``d``."""
    from slurmopt import trust
    from slurmopt.fsutil import Refused, open_dir_nofollow, open_regular_at

    try:
        dfd = open_dir_nofollow(d)
    except (OSError, Refused):
        return
    try:
        for name in _spool_names(dfd):
            try:
                fd, st = open_regular_at(dfd, name)
            except (OSError, Refused):
                continue
            try:
                owner = trust.user_name(st.st_uid)
                recs = [] if trust.file_refusal(name, owner) else _tail_records(fd)
            finally:
                os.close(fd)
            for rec in recs:
                data = rec.get("data")
                job_id = rec.get("job_id")
                at = rec.get("at")
                if not (isinstance(data, dict) and isinstance(job_id, int)):
                    continue
                if not isinstance(at, int | float) or at < since:
                    continue
                why = trust.record_refusal(rec, owner)
                if why:
                    if refused is not None:
                        refused.append(f"{owner}: job {job_id}: {why}")
                    continue
                if data.get("sbatch_rc") == 0 and data.get("partition") and data.get("request"):
                    yield owner, rec
    finally:
        os.close(dfd)


def _tail_records(fd: int) -> list[dict[str, Any]]:
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, max(0, size - TAIL_BYTES), os.SEEK_SET)
        chunk = os.read(fd, TAIL_BYTES)
    except OSError:
        return []
    lines = chunk.split(b"\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line is cut
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
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
