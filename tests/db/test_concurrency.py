"""Many processes writing at once lose nothing (SQLite WAL + BEGIN IMMEDIATE; PostgreSQL)."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

from sqlalchemy import Engine, func, select

from slurmopt.history import db
from slurmopt.history.ingest import observe, record_decision
from slurmopt.history.orm import Decision, JobRow, SpoolRecord
from slurmopt.history.spool import ingest_spool

from .conftest import job, snap

WRITERS = 6
PER_WRITER = 25


def _writer(url: str, w: int) -> None:
    engine = db.make_engine(url)
    for i in range(PER_WRITER):
        db.with_retry(
            engine,
            lambda s, i=i: record_decision(s, job_id=w * 1000 + i, decided_at=i, outcome="x"),
            attempts=8,
        )
        # every writer also observes the same snapshots: upserts, not duplicates
        at = 100 + i
        db.with_retry(engine, lambda s, at=at: observe(s, snap(at, job(1), job(2))), attempts=8)
    engine.dispose()


def _ingester(url: str, spool: str) -> None:
    engine = db.make_engine(url)
    ingest_spool(engine, Path(spool), grace_s=0, attempts=8)
    engine.dispose()


def _run(target: object, args: list[tuple[object, ...]]) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=target, args=a) for a in args]  # type: ignore[arg-type]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def _count(engine: Engine, model: type) -> int:
    with db.transaction(engine) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_concurrent_writers_lose_nothing(engine: Engine, db_url: str) -> None:
    engine.dispose()
    t0 = time.monotonic()
    _run(_writer, [(db_url, w) for w in range(WRITERS)])
    assert _count(engine, Decision) == WRITERS * PER_WRITER
    assert _count(engine, JobRow) == 2
    assert time.monotonic() - t0 < 120


def test_concurrent_ingesters_store_each_record_once(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    from slurmopt.trust import me

    n = 0
    for f in range(12):
        name = spool / f"optsub-{me()}.{f}.jsonl"  # named after its owner, or refused
        with open(name, "w", encoding="utf-8") as fh:
            for i in range(20):
                fh.write(json.dumps({"id": f"{f}-{i}", "time": n, "job_id": n}) + "\n")
                n += 1
        os.utime(name, (1, 1))
    engine.dispose()
    _run(_ingester, [(db_url, str(spool)) for _ in range(4)])
    assert _count(engine, SpoolRecord) == n
    assert list(spool.iterdir()) == []
