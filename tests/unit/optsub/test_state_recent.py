"""A burst of optsub submissions between two controller cycles counts the ones already placed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from slurmopt.model import JobRequest
from slurmopt.optsub import spool
from slurmopt.optsub.config import OptsubConfig
from slurmopt.optsub.state import get_state, recent_submissions, with_recent
from slurmopt.statecache import write_cache
from tests.unit.optimize.test_problem_builders import NOW, hetero_cluster


def record(job_id: int, at: float, partition: str = "a100", rc: int = 0) -> dict[str, object]:
    req = dataclasses.asdict(JobRequest(gpus_per_node=4, gpu_type="a100", time_limit_s=3600))
    return spool.make_record(
        job_id, {"partition": partition, "request": req, "sbatch_rc": rc}, now=at
    )


def test_recent_submissions_are_added_as_pending_jobs(tmp_path: Path) -> None:
    d = str(tmp_path / "spool")
    Path(d).mkdir(exist_ok=True)
    for rec in (record(1, NOW - 10), record(2, NOW + 1), record(3, NOW + 2, rc=1)):
        spool.append(rec, d)
    recent = recent_submissions([d, str(tmp_path / "missing")], since=NOW)
    assert [r["job_id"] for r in recent] == [2]  # older than the cache, or failed: ignored
    snap = with_recent(hetero_cluster(), recent)
    (job,) = snap.pending
    assert (job.job_id, job.partitions, job.request.gpus_per_node) == (2, ("a100",), 4)
    assert with_recent(snap, recent) == snap  # already known: not added twice


def test_get_state_overlays_the_spool_on_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    write_cache(hetero_cluster(), cache, now=NOW)
    d = str(tmp_path / "spool")
    Path(d).mkdir(exist_ok=True)
    spool.append(record(7, NOW + 5), d)
    # the overlay is under test, not the live refresh (tests/unit/optsub/test_fresh.py):
    # no squeue of whatever Slurm this machine has
    cfg = OptsubConfig(cache_path=str(cache), cache_max_age_s=3600, spool_dir=d, live_refresh=False)
    snap, source, runtimes = get_state(cfg, now=NOW + 10, env={})
    assert "1 newer optsub submission" in source
    assert [j.job_id for j in snap.pending] == [7]
    assert runtimes == {}


def test_a_corrupt_spool_line_is_skipped(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    d.mkdir()
    (d / "optsub-x.jsonl").write_text('{"broken\n')
    spool.append(record(9, NOW + 1), str(d))
    assert [r["job_id"] for r in recent_submissions([str(d)], since=NOW)] == [9]


def test_a_held_submission_is_overlaid_as_held(tmp_path: Path) -> None:
    """A --hold job takes no resources: the next optsub must not plan around it."""
    from slurmopt.optimize.config import OptimizeConfig
    from slurmopt.optimize.problem import Problem

    d = str(tmp_path / "spool")

    Path(d).mkdir(exist_ok=True)
    req = dataclasses.asdict(JobRequest(gpus_per_node=4, gpu_type="a100", time_limit_s=3600))
    spool.append(
        spool.make_record(
            5, {"partition": "a100", "request": req, "sbatch_rc": 0, "held": True}, now=NOW + 1
        ),
        d,
    )
    snap = with_recent(hetero_cluster(), recent_submissions([d], since=NOW))
    (job,) = snap.pending
    assert job.held
    assert Problem.build(snap, OptimizeConfig(), now=NOW).jobs == []
