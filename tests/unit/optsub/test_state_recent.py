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


def test_a_burst_sees_the_submissions_of_the_same_second_ahead_of_it(tmp_path: Path) -> None:
    """8 one-GPU jobs just placed on the a100s (8 GPUs) in this very second: the next
    decision must see the a100s full, not start ahead of them (it has a larger job id
    than all of them in Slurm). Before the fix it tied on the submit second and won on
    its id (-1), saw the a100s free and queued a ninth job there."""
    from slurmopt.optimize.config import OptimizeConfig
    from slurmopt.optsub.decide import decide
    from slurmopt.slurm.sbatch_args import parse

    d = str(tmp_path / "spool")
    Path(d).mkdir()
    req = dataclasses.asdict(JobRequest(gpus_per_node=1, mem_per_node_mb=1000, time_limit_s=3600))
    for i in range(8):
        rec = {"partition": "a100", "request": req, "sbatch_rc": 0}
        spool.append(spool.make_record(20 + i, rec, now=NOW + 0.1 * i), d)
    snap = with_recent(hetero_cluster(), recent_submissions([d], since=NOW))
    assert len(snap.pending) == 8
    argv = ["-p", "a100,v100", "--gpus-per-node=1", "--mem=1G", "-t", "60", "s.sh"]
    now = NOW + 0.9  # the same second as all 8
    dec = decide(
        parse(argv, {}, "#!/bin/sh\n"), snap, OptsubConfig(), OptimizeConfig(), now=now, user="u"
    )
    a100 = next(c for c in dec.candidates if c.partition == "a100")
    assert a100.start is not None and a100.start >= NOW + 3600  # behind the 8 on the a100s
    assert dec.partition == "v100"  # free now
    # one job fewer: a GPU is left, and the a100 (faster) wins again
    snap7 = dataclasses.replace(snap, jobs=snap.jobs[:-1])
    dec7 = decide(
        parse(argv, {}, "#!/bin/sh\n"), snap7, OptsubConfig(), OptimizeConfig(), now=now, user="u"
    )
    assert dec7.partition == "a100", dec7.candidates
