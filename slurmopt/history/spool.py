"""Ingest optsub's spool: append-only JSON-lines files of its decisions.

optsub never touches the database on the submit path; it appends one JSON
object per line to files in the spool directory. This module moves them into
the database without losing any, and without trusting them (docs/security.md):
it runs as root, the spool is writable by every user.

1. the spool directory is opened once without following a symlink (it must be
   owned by root or the caller, and sticky if others may write it); every
   later open, rename and delete is relative to that descriptor;
2. every ``*.jsonl`` file is first *claimed*: renamed to
   ``<name>.<time>.<pid>.claimed`` (atomic; an optsub that opens the path
   afterwards starts a new file). At most :attr:`Limits.max_entries` names
   are looked at, :attr:`Limits.max_files` claimed per call and
   :attr:`Limits.max_files_per_user` per file owner (the rest wait);
3. each claimed file is opened with ``O_NOFOLLOW | O_NONBLOCK``; only a
   regular file with one link, named after its owner (``optsub-<owner>.``),
   of at most :attr:`Limits.max_file_bytes`, is read; lines longer than
   :attr:`Limits.max_line_bytes` or nested deeper than
   :attr:`Limits.max_depth` are bad lines. A record is kept only if its
   ``user`` is the file's owner; it is stored with the owner's uid and name
   as the file system reports them (the controller trusts nothing else);
4. all records are written in one transaction, each keyed (its ``id``/``uuid``
   field, else a hash of the line) so a second ingestion inserts nothing,
   together with one audit row (``trust_refusals``) per refusal;
5. only after the commit are claimed files deleted, and only those not
   modified for ``grace_s`` seconds (a writer that opened the file before the
   rename may still append a line; such a file is read again next time).

If the database is locked or unreachable, the transaction fails and the files
stay where they are. Files with bad or refused lines, and refused files
(symlinks, FIFOs, hard links, too large, named after another user), are moved
to ``bad/`` (a directory of the ingesting user, mode 0700) instead of being
deleted; a rename never follows a symlink.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from slurmopt.fsutil import (
    Refused,
    json_depth,
    open_dir_nofollow,
    open_regular_at,
    read_lines_bounded,
)
from slurmopt.history.db import with_retry
from slurmopt.history.ingest import record_decision
from slurmopt.history.orm import JobRow, SpoolRecord, TrustRefusal
from slurmopt.history.upsert import insert_ignore, table_of
from slurmopt.trust import Refusal, file_refusal, record_refusal, user_name

log = logging.getLogger(__name__)

_TIME_KEYS = ("at", "time", "ts", "timestamp", "submitted_at", "decided_at")
_ID_KEYS = ("id", "uuid", "key", "record_id")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one ingestion reads (a hostile spool cannot exhaust memory or time)."""

    max_file_bytes: int = 64 << 20
    max_line_bytes: int = 1 << 20
    max_depth: int = 32
    max_entries: int = 100_000
    """Directory entries looked at per call."""
    max_files: int = 2000
    """Files claimed and read per call."""
    max_files_per_user: int = 64
    """Files of one owner read per call (a million tiny files cannot starve others)."""


@dataclass
class SpoolStats:
    """What one :func:`ingest_spool` call did."""

    files: int = 0
    records: int = 0
    inserted: int = 0
    decisions: int = 0
    bad_lines: int = 0
    removed: int = 0
    kept: int = 0
    refused_files: int = 0
    """Files not read for a trust or size reason (moved to bad/)."""
    refused_records: int = 0
    """Records not attributable to the file's owner."""
    deferred: int = 0
    """Files left for a later call (over the per-call or per-user caps)."""
    refusals: list[Refusal] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # not asdict(self): it deep-copies the refusals, and Refusal (a plain immutable
        # class since 6985d8e) cannot be copied field by field ("cannot assign to field")
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "refusals"}
        d["refusals"] = [r.to_dict() for r in self.refusals]
        return d


def claim(spool: Path, limits: Limits | None = None) -> list[Path]:
    """Rename the spool's ``*.jsonl`` files to ``*.claimed``; return every claimed file."""
    fd = open_dir_nofollow(spool)
    try:
        names, _deferred = _claim(fd, limits or Limits())
    finally:
        os.close(fd)
    return [spool / n for n in names]


def _claim(dfd: int, limits: Limits) -> tuple[list[str], Counter[int]]:
    """Claim files in the directory ``dfd``; return claimed names and files deferred per uid."""
    entries: list[tuple[str, int]] = []
    with os.scandir(dfd) as it:
        for i, e in enumerate(it):
            if i >= limits.max_entries:
                break
            if not e.name.endswith((".jsonl", ".claimed")):
                continue
            try:
                entries.append((e.name, e.stat(follow_symlinks=False).st_uid))
            except FileNotFoundError:
                continue
    per_uid: Counter[int] = Counter()
    deferred: Counter[int] = Counter()
    out: list[str] = []
    for name, uid in sorted(entries):
        if len(out) >= limits.max_files or per_uid[uid] >= limits.max_files_per_user:
            deferred[uid] += 1
            continue
        per_uid[uid] += 1
        if name.endswith(".claimed"):
            out.append(name)
            continue
        target = f"{name}.{time.time_ns()}.{os.getpid()}.claimed"
        try:
            os.rename(name, target, src_dir_fd=dfd, dst_dir_fd=dfd)
        except FileNotFoundError:
            continue  # another ingester claimed it first
        except PermissionError:  # not root in a sticky spool: another user's file
            deferred[uid] += 1
            continue
        out.append(target)
    return out, deferred


def record_time(rec: dict[str, Any], default: int) -> int:
    """A record's time in epoch seconds (numbers or ISO 8601 strings), else ``default``."""
    for k in _TIME_KEYS:
        v = rec.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return int(v)
        if isinstance(v, str):
            try:
                return int(datetime.fromisoformat(v).timestamp())
            except ValueError:
                continue
    return default


def record_key(rec: dict[str, Any], line: str) -> str:
    """The record's own id, else a hash of its canonical JSON."""
    for k in _ID_KEYS:
        v = rec.get(k)
        if isinstance(v, str | int) and not isinstance(v, bool) and str(v):
            return f"{k}:{v}"[:128]
    canon = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


@dataclass
class _File:
    """One claimed file as read: its attested owner and its attributable records."""

    name: str
    owner_uid: int
    owner: str
    mtime: int
    records: list[tuple[str, dict[str, Any]]]
    bad: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Why records were refused, with their counts."""


def parse_lines(lines: list[bytes], limits: Limits) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """The JSON objects among ``lines`` (with their text) and the number of bad lines."""
    good: list[tuple[str, dict[str, Any]]] = []
    bad = 0
    for raw in lines:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            bad += 1
            continue
        if isinstance(obj, dict) and json_depth(obj, limits.max_depth) <= limits.max_depth:
            good.append((text, obj))
        else:
            bad += 1
    return good, bad


def _read_claimed(dfd: int, name: str, limits: Limits) -> _File:
    """Read one claimed file and keep the records its owner may write.

    Raises:
        FileNotFoundError: it vanished (another ingester removed it).
        Refused: the whole file is not used (``uid`` set where known).
    """
    fd, st = open_regular_at(dfd, name)
    try:
        owner = user_name(st.st_uid)
        why = file_refusal(name, owner)
        if why is None and st.st_size > limits.max_file_bytes:
            why = f"{st.st_size} bytes, more than {limits.max_file_bytes}"
        if why:
            raise Refused(why, uid=st.st_uid)
        lines, too_long, truncated = read_lines_bounded(
            fd, max_bytes=limits.max_file_bytes, max_line=limits.max_line_bytes
        )
    finally:
        os.close(fd)
    if truncated:
        raise Refused(f"grew beyond {limits.max_file_bytes} bytes", uid=st.st_uid)
    good, bad = parse_lines(lines, limits)
    f = _File(name, st.st_uid, owner, int(st.st_mtime), [], bad=bad + too_long)
    for line, rec in good:
        why = record_refusal(rec, owner)
        if why is None:
            f.records.append((line, rec))
        else:
            f.refused[why] += 1
    return f


def _int_or_none(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _store(
    session: Session, rec: dict[str, Any], line: str, default_t: int, now: int, f: _File
) -> tuple[bool, bool]:
    at = record_time(rec, default_t)
    job_id = _int_or_none(rec.get("job_id"))
    kind = str(rec.get("kind") or rec.get("event") or rec.get("type") or "")
    inserted = insert_ignore(
        session,
        table_of(SpoolRecord),
        {
            "key": record_key(rec, line),
            "at": at,
            "kind": kind[:32],
            "job_id": job_id,
            "user": (str(rec["user"])[:64] if rec.get("user") else None),
            "data": rec,
            "ingested_at": now,
            "owner_uid": f.owner_uid,
            "owner": f.owner[:64],
        },
        ["key"],
    )
    if not inserted or job_id is None:
        return inserted, False
    # A job Slurm already reported as another user's is not this record's to describe.
    users = set(session.scalars(select(JobRow.user).where(JobRow.job_id == job_id)))
    if users and f.owner not in users:
        return inserted, False
    session.execute(
        update(JobRow).where(JobRow.job_id == job_id, JobRow.user == f.owner).values(managed=True)
    )
    return inserted, _decision(session, rec, job_id, at, f.owner)


def _decision(session: Session, rec: dict[str, Any], job_id: int, at: int, owner: str) -> bool:
    """A ``decisions`` row from an optsub record (``data`` = optsub's Decision.to_dict())."""
    data = rec.get("data") if isinstance(rec.get("data"), dict) else rec
    assert isinstance(data, dict)
    target = data.get("partition") or data.get("to_partition") or ""
    action = str(data.get("action") or ("place" if target else "passthrough"))
    allowed = data.get("allowed") or data.get("allowed_partitions") or []
    if isinstance(allowed, list):
        allowed = ",".join(str(a) for a in allowed)
    cands = data.get("candidates") if isinstance(data.get("candidates"), list) else []
    assert isinstance(cands, list)
    chosen = next((c for c in cands if isinstance(c, dict) and c.get("chosen")), {})
    rc = data.get("sbatch_rc")
    return record_decision(
        session,
        job_id=job_id,
        decided_at=at,
        source="optsub",
        cluster=str(rec.get("cluster") or data.get("cluster") or ""),
        mode=str(data.get("policy") or data.get("mode") or "")[:16],
        from_partitions=str(allowed)[:512],
        to_partition=str(target)[:64],
        gpu_type=(str(data["gpu_type"])[:32] if data.get("gpu_type") else None),
        candidates=cands,
        predicted_start=_float(chosen.get("start", data.get("predicted_start"))),
        predicted_end=_float(chosen.get("end", data.get("predicted_end"))),
        predicted_runtime=_float(chosen.get("runtime")),
        applied=bool(target) and action not in ("passthrough", "fallback") and rc in (0, None),
        outcome=action[:32],
        reason=(str(data["reason"]) if data.get("reason") else None),
        managed_by=f"optsub:{owner}"[:64],
    )


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def ingest_spool(
    engine: Engine,
    spool: Path,
    *,
    grace_s: float = 60.0,
    now: float | None = None,
    attempts: int = 5,
    limits: Limits | None = None,
) -> SpoolStats:
    """Move every attributable spool record into the database; remove files only after the commit.

    Raises:
        DatabaseError: the database stayed locked or unreachable (files are kept).
    """
    limits = limits or Limits()
    stats = SpoolStats()
    t_now = time.time() if now is None else now
    try:
        dfd = open_dir_nofollow(spool)
    except (FileNotFoundError, NotADirectoryError):
        return stats
    except Refused as exc:
        who = "?" if exc.uid is None else user_name(exc.uid)
        stats.refusals.append(Refusal("ingest", who, str(spool), exc.why))
        _log_and_store(engine, stats, t_now, attempts)
        return stats
    try:
        return _ingest(engine, dfd, spool, stats, grace_s, t_now, attempts, limits)
    finally:
        os.close(dfd)


def _ingest(  # noqa: PLR0912  one branch per outcome of a spool file (ingested, refused, deferred, kept); the trust rules of docs/security.md in one place
    engine: Engine,
    dfd: int,
    spool: Path,
    stats: SpoolStats,
    grace_s: float,
    t_now: float,
    attempts: int,
    limits: Limits,
) -> SpoolStats:
    names, deferred = _claim(dfd, limits)
    stats.deferred = sum(deferred.values())
    for uid, n in sorted(deferred.items()):
        stats.refusals.append(
            Refusal(
                "ingest",
                user_name(uid),
                f"{n} spool file(s)",
                f"over the caps of {limits.max_files_per_user} files per user and "
                f"{limits.max_files} per run (left for later)",
            )
        )
    stats.files = len(names)
    loaded: list[_File] = []
    quarantine: list[str] = []
    for name in names:
        try:
            f = _read_claimed(dfd, name, limits)
        except FileNotFoundError:
            continue  # another ingester committed and removed it
        except Refused as exc:
            who = "?" if exc.uid is None else user_name(exc.uid)
            stats.refusals.append(Refusal("ingest", who, name, exc.why))
            stats.refused_files += 1
            quarantine.append(name)
            continue
        loaded.append(f)
        stats.records += len(f.records)
        stats.bad_lines += f.bad
        for why, n in sorted(f.refused.items()):
            stats.refused_records += n
            stats.refusals.append(Refusal("ingest", f.owner, f"{f.name}: {n} record(s)", why))

    def work(session: Session) -> tuple[int, int]:
        ins = dec = 0
        for f in loaded:
            for line, rec in f.records:
                i, d = _store(session, rec, line, f.mtime, int(t_now), f)
                ins += i
                dec += d
        _add_refusals(session, stats.refusals, int(t_now))
        return ins, dec

    if loaded or stats.refusals:
        stats.inserted, stats.decisions = with_retry(engine, work, attempts=attempts)
    for r in stats.refusals:
        r.log()
    for name in quarantine:
        _to_bad(dfd, name)
    for f in loaded:
        if t_now - f.mtime < grace_s:
            stats.kept += 1
            continue
        try:
            if f.bad or f.refused:
                if not _to_bad(dfd, f.name):
                    continue
                log.warning(
                    "spool file %s has %d unreadable and %d refused lines: moved to bad/",
                    f.name,
                    f.bad,
                    sum(f.refused.values()),
                )
            else:
                os.unlink(f.name, dir_fd=dfd)
        except FileNotFoundError:
            continue  # removed by a concurrent ingester after its own commit
        stats.removed += 1
    log.info("spool %s: %s", spool, {k: v for k, v in stats.to_dict().items() if k != "refusals"})
    return stats


def _add_refusals(session: Session, refusals: list[Refusal], at: int) -> None:
    for r in refusals:
        session.add(
            TrustRefusal(
                at=at,
                component=r.component[:16],
                who=r.who[:64],
                what=r.what[:256],
                why=r.why[:256],
            )
        )


def _log_and_store(engine: Engine, stats: SpoolStats, at: float, attempts: int) -> None:
    for r in stats.refusals:
        r.log()

    def work(session: Session) -> None:
        _add_refusals(session, stats.refusals, int(at))

    with_retry(engine, work, attempts=attempts)


def _to_bad(dfd: int, name: str) -> bool:
    """Move ``name`` into ``bad/`` (the ingesting user's, mode 0700); False if that is unsafe."""
    with contextlib.suppress(FileExistsError):
        os.mkdir("bad", 0o700, dir_fd=dfd)
    try:
        bfd = os.open("bad", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
    except OSError as exc:
        log.warning("spool bad/ unusable (%s): %s left in place", exc.strerror, name)
        return False
    try:
        st = os.fstat(bfd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            log.warning("spool bad/ is not this user's own 0700 directory: %s left in place", name)
            return False
        os.rename(name, name, src_dir_fd=dfd, dst_dir_fd=bfd)
        return True
    except OSError as exc:  # vanished, or not ours to move (a non-root ingester)
        if not isinstance(exc, FileNotFoundError):
            log.warning("spool %s not moved to bad/: %s", name, exc.strerror)
        return False
    finally:
        os.close(bfd)
