"""optsub's spool: one intact JSON line per record, even with concurrent writers; ingestible."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from slurmopt.optsub import spool


def _writer(d: str, n: int, k: int) -> None:
    for i in range(n):
        rec = spool.make_record(k * 1000 + i, {"action": "keep", "pad": "x" * 3000, "i": i})
        spool.append(rec, Path(d))


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


def test_a_missing_spool_is_not_created_and_nothing_is_written_elsewhere(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home")}
    missing = tmp_path / "configured"
    with pytest.raises(spool.SpoolError, match="does not exist"):
        spool.append(spool.make_record(1, {}), missing, env)
    assert not missing.exists() and not (tmp_path / "home").exists()


def test_the_users_own_spool_is_created(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    own = spool.user_spool(env)
    path = Path(spool.append(spool.make_record(2, {}), own, env))
    assert path.parent == Path(own) and json.loads(path.read_text())["job_id"] == 2
    assert (Path(own).stat().st_mode & 0o777) == 0o700


def test_spool_dir_is_one_directory_in_this_order(tmp_path: Path) -> None:
    env = {"SLURMOPT_SPOOL_DIR": "/a", "SLURMOPT_SPOOL": "/b", "HOME": str(tmp_path)}
    assert spool.spool_dir("/c", env) == "/a"
    assert spool.spool_dir("/c", {"SLURMOPT_SPOOL": "/b"}) == "/b"
    assert spool.spool_dir("/c", {}) == "/c"
    assert spool.spool_dir("", {}, euid=0) == spool.SHARED_SPOOL
    if not Path(spool.SHARED_SPOOL).is_dir():
        home = {"HOME": str(tmp_path)}
        assert spool.spool_dir("", home, euid=1000) == str(tmp_path / ".local/state/slurmopt/spool")
    assert spool.spool_dirs("/c", {}) == ["/c"]


def test_writer_and_controller_agree_on_the_spool(tmp_path: Path) -> None:
    from slurmopt.history.config import HistoryConfig
    from slurmopt.optsub import config as oconf

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[history]\nspool_dir = "{tmp_path / "s"}"\n')
    env = {"SLURMOPT_CONFIG": str(cfg), "HOME": str(tmp_path)}
    oc, _ = oconf.load(env, paths=[cfg])
    assert spool.spool_dir(oc.spool_dir, env) == str(tmp_path / "s")
    assert HistoryConfig(spool_dir=str(tmp_path / "s")).resolved_spool(env) == tmp_path / "s"


def test_a_link_or_foreign_file_in_the_users_name_is_never_written_through(
    tmp_path: Path,
) -> None:
    target = tmp_path / "victim"
    target.write_text("")
    d = tmp_path / "spool"
    d.mkdir()
    name = f"optsub-{spool._user()}.jsonl"
    (d / name).symlink_to(target)
    first = Path(spool.append(spool.make_record(3, {}), d))
    assert target.read_text() == "" and first.name != name and first.parent == d
    assert first.name.endswith(".jsonl") and spool.read(first)[0]["job_id"] == 3
    if os.geteuid() == 0:  # a regular file owned by someone else
        (d / name).unlink()
        (d / name).write_text("")
        os.chown(d / name, 65534, 65534)
        second = Path(spool.append(spool.make_record(4, {}), d))
        assert (d / name).read_text() == "" and spool.read(second)[0]["job_id"] == 4


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
    spool.append(spool.make_record(77, data), d)
    stats = ingest_spool(engine, d, grace_s=0.0)
    assert stats.records == 1 and stats.inserted == 1 and stats.decisions == 1
