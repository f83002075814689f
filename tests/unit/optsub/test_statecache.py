"""The controller's state cache: atomic write, freshness check, corrupt files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmopt.statecache import CacheError, default_cache_path, read_cache, write_cache
from tests.unit.optsub.conftest import NOW, make_snapshot


def test_round_trip_and_freshness(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.json"
    snap = make_snapshot()
    write_cache(snap, path, now=NOW)
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    back, _ = read_cache(path, max_age_s=60, now=NOW + 30)
    assert back == snap
    with pytest.raises(CacheError, match="old"):
        read_cache(path, max_age_s=60, now=NOW + 61)
    with pytest.raises(CacheError, match="future"):
        read_cache(path, max_age_s=60, now=NOW - 3600)
    assert [p.name for p in path.parent.iterdir()] == ["cache.json"]  # no temp files left


@pytest.mark.parametrize(
    "content", ["", "{", "[]", '{"format": 2, "snapshot": {}}', '{"format": 1, "snapshot": {}}']
)
def test_corrupt_cache_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(CacheError):
        read_cache(path, max_age_s=60, now=NOW)


def test_missing_cache_and_default_path(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="no state cache"):
        read_cache(tmp_path / "none.json", max_age_s=60)
    assert default_cache_path({"SLURMOPT_STATE_CACHE": "/x/y"}) == Path("/x/y")
    assert default_cache_path({}).name == "state-cache.json"


def test_active_only_drops_finished_jobs(tmp_path: Path) -> None:
    import dataclasses

    from slurmopt.model import Job, JobState

    snap = make_snapshot()
    done = Job(job_id=9, name="old", user="u", state=JobState.COMPLETED, partitions=("cpu",))
    snap = dataclasses.replace(snap, jobs=(*snap.jobs, done))
    path = tmp_path / "c.json"
    write_cache(snap, path, now=NOW)
    full, _ = read_cache(path, max_age_s=60, now=NOW)
    active, _ = read_cache(path, max_age_s=60, now=NOW, active_only=True)
    assert 9 in {j.job_id for j in full.jobs}
    assert {j.job_id for j in active.jobs} == {j.job_id for j in full.jobs} - {9}
    assert active.nodes == full.nodes and active.partitions == full.partitions


def test_predicted_runtimes_round_trip_and_bad_entries_dropped(tmp_path: Path) -> None:
    import json

    path = tmp_path / "cache.json"
    snap = make_snapshot()  # running jobs 100 and 101 on the busy a100 nodes
    write_cache(snap, path, now=NOW, runtimes={100: 1800.04, 101: 60.0, 7: 10.0})
    back, runtimes = read_cache(path, max_age_s=60, now=NOW)
    assert back == snap and runtimes == {100: 1800.0, 101: 60.0}  # 7: not in the snapshot
    data = json.loads(path.read_text())
    data["runtimes"] = {"100": "x", "101": -5, "abc": 3, "102": None}
    path.write_text(json.dumps(data))
    assert read_cache(path, max_age_s=60, now=NOW)[1] == {}
    write_cache(snap, path, now=NOW)
    assert "runtimes" not in json.loads(path.read_text())
