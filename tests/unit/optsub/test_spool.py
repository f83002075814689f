"""optsub's spool: one intact JSON line per record, even with concurrent writers; ingestible."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from slurmopt.optsub import spool


def _writer(d: str, n: int, k: int) -> None:
    for i in range(n):
        rec = spool.make_record(k * 1000 + i, {"action": "keep", "pad": "x" * 3000, "i": i})
        spool.append(rec, [Path(d)])


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    procs = [multiprocessing.Process(target=_writer, args=(str(tmp_path), 50, k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    (f,) = list(tmp_path.glob("optsub-*.jsonl"))
    recs = spool.read(f)
    assert len(recs) == 200
    assert len({r["key"] for r in recs}) == 200
    assert {r["kind"] for r in recs} == {"optsub.decision"}


def test_falls_back_to_next_directory(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    unusable = tmp_path / "afile" / "spool"  # cannot be created
    user = tmp_path / "user" / "spool"
    path = Path(spool.append(spool.make_record(1, {}), [unusable, user]))
    assert path.parent == user and json.loads(path.read_text())["job_id"] == 1


def test_a_configured_directory_is_created(tmp_path: Path) -> None:
    configured = tmp_path / "configured"
    path = Path(spool.append(spool.make_record(2, {}), [configured, tmp_path / "user"]))
    assert path.parent == configured


def test_spool_dirs_order(tmp_path: Path) -> None:
    env = {"SLURMOPT_SPOOL_DIR": "/a", "SLURMOPT_SPOOL": "/b", "HOME": str(tmp_path)}
    dirs = spool.spool_dirs("/c", env)
    assert dirs[:4] == ["/a", "/b", "/c", spool.SHARED_SPOOL]
    assert dirs[-1] == str(tmp_path / ".local/state/slurmopt/spool")


def test_history_ingests_optsub_records(tmp_path: Path) -> None:
    from slurmopt.history import db
    from slurmopt.history.spool import ingest_spool

    engine = db.make_engine(f"sqlite:///{tmp_path / 'h.sqlite'}")
    db.upgrade(engine)
    d = tmp_path / "spool"
    d.mkdir()
    data = {
        "action": "rewrite",
        "partition": "h100",
        "gpu_type": "h100",
        "allowed": ["a100", "h100"],
        "policy": "completion",
        "sbatch_rc": 0,
        "candidates": [
            {"partition": "h100", "chosen": True, "start": 1.0, "end": 2.0, "runtime": 1.0}
        ],
    }
    spool.append(spool.make_record(77, data), [d])
    stats = ingest_spool(engine, d, grace_s=0.0)
    assert stats.records == 1 and stats.inserted == 1 and stats.decisions == 1
