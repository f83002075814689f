"""optsub spool ingestion: idempotent, files removed only after commit, nothing lost."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from slurmopt.history import db
from slurmopt.history.db import DatabaseError, transaction
from slurmopt.history.orm import Decision, SpoolRecord
from slurmopt.history.spool import ingest_spool
from slurmopt.trust import me

ME = me()


def _write(path: Path, records: list[dict[str, object]], *, age_s: float = 3600) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    t = time.time() - age_s
    os.utime(path, (t, t))


def _recs(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "id": f"r{i}",
            "time": 1000 + i,
            "kind": "submit",
            "job_id": 100 + i,
            "user": ME,
            "partition": "h100",
            "allowed": ["a100", "h100"],
            "mode": "enforce",
        }
        for i in range(start, start + n)
    ]


def _count(engine: Engine, model: type) -> int:
    with transaction(engine) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_ingest_then_again_creates_no_duplicates(engine: Engine, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    _write(spool / f"optsub-{ME}.a.jsonl", _recs(5))
    _write(spool / f"optsub-{ME}.b.jsonl", [*_recs(3, start=5), {"no": "id", "time": 5}])
    st = ingest_spool(engine, spool)
    assert (st.files, st.records, st.inserted, st.removed) == (2, 9, 9, 2)
    assert st.decisions == 8
    assert list(spool.iterdir()) == []
    # the same lines spooled again (e.g. a file restored from backup)
    _write(spool / f"optsub-{ME}.c.jsonl", [*_recs(8), {"no": "id", "time": 5}])
    st2 = ingest_spool(engine, spool)
    assert (st2.records, st2.inserted, st2.decisions) == (9, 0, 0)
    assert _count(engine, SpoolRecord) == 9
    assert _count(engine, Decision) == 8
    with transaction(engine) as s:
        d = s.execute(select(Decision).where(Decision.job_id == 100)).scalar_one()
    assert (d.source, d.to_partition, d.from_partitions, d.decided_at) == (
        "optsub",
        "h100",
        "a100,h100",
        1000,
    )


def test_recent_files_are_kept_until_quiet(engine: Engine, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    _write(spool / f"optsub-{ME}.live.jsonl", _recs(2), age_s=0)
    st = ingest_spool(engine, spool, grace_s=60)
    assert (st.inserted, st.kept, st.removed) == (2, 1, 0)
    claimed = list(spool.glob("*.claimed"))
    assert len(claimed) == 1
    # a late writer appends to the claimed file: the line is picked up next time
    _write(claimed[0], _recs(1, start=2), age_s=0)
    st = ingest_spool(engine, spool, grace_s=60, now=time.time() + 120)
    assert (st.inserted, st.removed) == (1, 1)
    assert _count(engine, SpoolRecord) == 3
    assert list(spool.iterdir()) == []


def test_bad_lines_keep_the_file(engine: Engine, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / f"optsub-{ME}.x.jsonl").write_text(
        json.dumps({"id": "ok", "time": 1, "user": ME}) + "\nnot json\n[1, 2]\n"
    )
    os.utime(spool / f"optsub-{ME}.x.jsonl", (1, 1))
    st = ingest_spool(engine, spool)
    assert (st.inserted, st.bad_lines) == (1, 2)
    bad = list((spool / "bad").iterdir())
    assert len(bad) == 1 and "not json" in bad[0].read_text()


def test_unreachable_database_keeps_the_files(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    _write(spool / f"optsub-{ME}.a.jsonl", _recs(4))
    engine = db.make_engine("postgresql+psycopg://u:p@127.0.0.1:1/none")
    with pytest.raises(DatabaseError):
        ingest_spool(engine, spool, attempts=2)
    files = list(spool.glob("*.claimed"))
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 4


def test_locked_sqlite_keeps_the_files_then_ingests(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    engine = db.make_engine(url, busy_timeout_s=0.2)
    db.upgrade(engine)
    spool = tmp_path / "spool"
    spool.mkdir()
    _write(spool / f"optsub-{ME}.a.jsonl", _recs(4))
    locker = sqlite3.connect(tmp_path / "h.sqlite", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseError):
            ingest_spool(engine, spool, attempts=2)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert len(list(spool.glob("*.claimed"))) == 1
    st = ingest_spool(engine, spool)
    assert (st.inserted, st.removed) == (4, 1)
    assert _count(engine, SpoolRecord) == 4


def test_records_from_optsubs_own_writer(engine: Engine, tmp_path: Path) -> None:
    from slurmopt.history.ingest import observe
    from slurmopt.history.orm import JobRow
    from slurmopt.optsub import spool as optsub_spool

    from .conftest import job, snap

    spool = tmp_path / "spool"
    data = {
        "action": "place",
        "argv": ["-p", "h100"],
        "original": ["-p", "a100,h100"],
        "reason": "earliest completion",
        "policy": "completion",
        "partition": "h100",
        "gpu_type": "h100",
        "allowed": ["a100", "h100"],
        "now": 1000.0,
        "changes": {},
        "candidates": [
            {
                "partition": "a100",
                "eligible": True,
                "start": 5000.0,
                "end": 8600.0,
                "runtime": 3600.0,
                "chosen": False,
            },
            {
                "partition": "h100",
                "eligible": True,
                "start": 1000.0,
                "end": 2800.0,
                "runtime": 1800.0,
                "chosen": True,
            },
        ],
        "sbatch_rc": 0,
        "warning": None,
    }
    spool.mkdir()
    optsub_spool.append(optsub_spool.make_record(42, data, now=1000), spool)
    optsub_spool.append(optsub_spool.make_record(None, {"action": "fallback"}, now=1001), spool)
    for f in spool.iterdir():
        os.utime(f, (1, 1))
    st = ingest_spool(engine, spool)
    assert (st.inserted, st.decisions, st.removed) == (2, 1, 1)
    with transaction(engine) as s:
        d = s.execute(select(Decision)).scalar_one()
        observe(s, snap(1100, job(42, user=ME, partitions=("h100",))))
        managed = s.execute(select(JobRow.managed).where(JobRow.job_id == 42)).scalar_one()
        rec = s.execute(select(SpoolRecord).where(SpoolRecord.job_id == 42)).scalar_one()
    assert (rec.owner, rec.owner_uid) == (ME, os.geteuid())
    assert (d.job_id, d.to_partition, d.gpu_type, d.applied) == (42, "h100", "h100", True)
    assert (d.predicted_start, d.predicted_end, d.predicted_runtime) == (1000.0, 2800.0, 1800.0)
    assert len(d.candidates) == 2 and d.outcome == "place"
    assert managed
