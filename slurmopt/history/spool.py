"""Ingest optsub's spool: append-only JSON-lines files of its decisions.

optsub never touches the database on the submit path; it appends one JSON
object per line to files in the spool directory. This module moves them into
the database without losing any:

1. every ``*.jsonl`` file is first *claimed*: renamed to
   ``<name>.<time>.<pid>.claimed`` (atomic; an optsub that opens the path
   afterwards starts a new file);
2. all claimed files are read and written in one transaction, each record
   keyed (its ``id``/``uuid`` field, else a hash of the line) so a second
   ingestion inserts nothing;
3. only after the commit are claimed files deleted, and only those not
   modified for ``grace_s`` seconds (a writer that opened the file before the
   rename may still append a line; such a file is read again next time).

If the database is locked or unreachable, the transaction fails and the files
stay where they are. Lines that are not JSON objects are kept: the file is
moved to ``bad/`` instead of being deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from slurmopt.history.db import with_retry
from slurmopt.history.ingest import record_decision
from slurmopt.history.orm import JobRow, SpoolRecord
from slurmopt.history.upsert import insert_ignore, table_of

log = logging.getLogger(__name__)

_TIME_KEYS = ("at", "time", "ts", "timestamp", "submitted_at", "decided_at")
_ID_KEYS = ("id", "uuid", "key", "record_id")


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

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def claim(spool: Path) -> list[Path]:
    """Rename the spool's ``*.jsonl`` files to ``*.claimed``; return every claimed file."""
    for f in sorted(spool.glob("*.jsonl")):
        target = f.with_name(f"{f.name}.{time.time_ns()}.{os.getpid()}.claimed")
        try:
            f.rename(target)
        except FileNotFoundError:
            continue  # another ingester claimed it first
    return sorted(spool.glob("*.claimed"))


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


def read_file(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """The JSON objects in one file (with their line) and the number of bad lines."""
    good: list[tuple[str, dict[str, Any]]] = []
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            text = line.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(obj, dict):
                good.append((text, obj))
            else:
                bad += 1
    return good, bad


def _int_or_none(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _store(
    session: Session, rec: dict[str, Any], line: str, default_t: int, now: int
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
        },
        ["key"],
    )
    if not inserted or job_id is None:
        return inserted, False
    session.execute(update(JobRow).where(JobRow.job_id == job_id).values(managed=True))
    return inserted, _decision(session, rec, job_id, at)


def _decision(session: Session, rec: dict[str, Any], job_id: int, at: int) -> bool:
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
) -> SpoolStats:
    """Move every spool record into the database; remove files only after the commit.

    Raises:
        DatabaseError: the database stayed locked or unreachable (files are kept).
    """
    stats = SpoolStats()
    if not spool.is_dir():
        return stats
    files = claim(spool)
    stats.files = len(files)
    if not files:
        return stats
    t_now = time.time() if now is None else now
    loaded: list[tuple[Path, list[tuple[str, dict[str, Any]]], int, int]] = []
    for f in files:
        try:
            mtime = int(f.stat().st_mtime)
            recs, bad = read_file(f)
        except FileNotFoundError:
            continue  # another ingester committed and removed it
        loaded.append((f, recs, bad, mtime))
        stats.records += len(recs)
        stats.bad_lines += bad

    def work(session: Session) -> tuple[int, int]:
        ins = dec = 0
        for _f, recs, _bad, mtime in loaded:
            for line, rec in recs:
                i, d = _store(session, rec, line, mtime, int(t_now))
                ins += i
                dec += d
        return ins, dec

    stats.inserted, stats.decisions = with_retry(engine, work, attempts=attempts)
    for f, _recs, bad, mtime in loaded:
        if t_now - mtime < grace_s:
            stats.kept += 1
            continue
        try:
            if bad:
                (spool / "bad").mkdir(exist_ok=True)
                f.rename(spool / "bad" / f.name)
                log.warning("spool file %s has %d unreadable lines: moved to bad/", f.name, bad)
            else:
                f.unlink()
        except FileNotFoundError:
            continue  # removed by a concurrent ingester after its own commit
        stats.removed += 1
    log.info("spool %s: %s", spool, stats)
    return stats
