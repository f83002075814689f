"""Expected end of running jobs without a prediction: the learned share of their limit.

Learned from a real SQLite history (:func:`slurmopt.history.learn.limit_ratios`), used
by the profiles (:func:`slurmopt.optimize.schedule.base_profiles`), carried to optsub by
the state cache, and by optsub's decision.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.schedule import base_profiles
from slurmopt.optsub.config import OptsubConfig
from slurmopt.optsub.decide import decide
from slurmopt.optsub.state import get_state_full
from slurmopt.slurm.sbatch_args import parse
from slurmopt.statecache import read_state, write_cache
from tests.unit.optimize.test_problem_builders import NOW, hetero_cluster, running


def _history(url: str, rows: list[tuple[str, int, int]]) -> None:
    """Finished jobs (partition, runtime s, limit s) in a real SQLite history."""
    from slurmopt.history import db
    from slurmopt.history.orm import JobRow

    engine = db.make_engine(url)
    db.upgrade(engine)
    with db.transaction(engine) as s:
        for i, (part, rt, limit) in enumerate(rows):
            end = NOW - 1000 + i
            s.add(
                JobRow(
                    cluster="t",
                    job_id=1000 + i,
                    submit_time=end - rt - 5,
                    partition=part,
                    start_time=end - rt,
                    end_time=end,
                    time_limit_s=limit,
                    state="COMPLETED",
                )
            )


def test_limit_ratios_are_an_upper_quantile_per_partition_and_site_wide(tmp_path: Path) -> None:
    from slurmopt.history import db
    from slurmopt.history.learn import limit_ratios

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    # h100: 30 jobs using 1..30 % of a 1000 s limit; t4: 10 jobs (too few on their own)
    rows = [("h100", 10 * (i + 1), 1000) for i in range(30)]
    rows += [("t4", 800, 1000)] * 10 + [("t4", 5000, 1000)]  # ran past its limit: share 1
    _history(url, rows)
    with db.transaction(db.make_engine(url)) as s:
        got = limit_ratios(s)
        assert got["h100"] == pytest.approx(0.27)  # 90th percentile of 0.01 .. 0.30
        assert "t4" not in got
        assert got["*"] == pytest.approx(0.8)  # 41 jobs: the t4 ones are the top 11
        assert limit_ratios(s, last=10) == {}  # the 10 latest are fewer than 20
        assert limit_ratios(s, min_jobs=11)["t4"] == pytest.approx(0.8)
        assert limit_ratios(s, min_jobs=11, quantile=1.0)["t4"] == 1.0  # capped at the limit


def test_an_empty_history_learns_nothing(tmp_path: Path) -> None:
    from slurmopt.history import db
    from slurmopt.history.learn import limit_ratios

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    _history(url, [])
    with db.transaction(db.make_engine(url)) as s:
        assert limit_ratios(s) == {}


def _release(snap_job_elapsed: int, ratio: dict[str, float], limit: int = 1000) -> float:
    job = running(7, "h100", ["h1"], gpus=4, gpu_type="h100", limit=limit)
    job = dataclasses.replace(job, start_time=NOW - snap_job_elapsed, end_time=None)
    snap = hetero_cluster([job])
    prof = base_profiles(snap, OptimizeConfig(limit_ratio=ratio), NOW, {})
    n = [x.name for x in snap.nodes].index("h1")
    assert prof.gpu[n][0] == 0  # busy now
    return prof.times[n][1] - (NOW - snap_job_elapsed)  # seconds after its start


def test_running_jobs_are_expected_to_use_their_share_never_past_the_limit() -> None:
    assert _release(10, {}) == 1000  # no share: the limit
    assert _release(10, {"h100": 0.1}) == 100
    assert _release(10, {"*": 0.2}) == 200  # site-wide when the partition has none
    assert _release(10, {"h100": 0.1, "*": 0.5}) == 100
    assert _release(150, {"h100": 0.1}) == 300  # outlived its share: as long again
    assert _release(700, {"h100": 0.1}) == 1000  # never past its limit


def test_a_share_must_be_in_0_1() -> None:
    with pytest.raises(ValueError, match="limit_ratio"):
        OptimizeConfig(limit_ratio={"h100": 1.5})
    with pytest.raises(ValueError, match="limit_ratio"):
        OptimizeConfig(limit_ratio={"*": 0.0})


def test_optsub_waits_for_the_fast_gpus_when_their_jobs_end_soon(tmp_path: Path) -> None:
    """The h100s busy with jobs 60 s into a 1-hour limit, v100s idle. By the limit, the
    job runs on the v100s now; with the learned share (jobs there use at most 10 % of
    their limit) the h100s free within 5 minutes and the job finishes there first.
    The share comes from the state cache the controller wrote (bad entries dropped)."""
    jobs = []
    for i, n in enumerate(("h1", "h2")):
        j = running(50 + i, "h100", [n], gpus=4, gpu_type="h100", limit=3600)
        jobs.append(dataclasses.replace(j, start_time=NOW - 60, end_time=None))
    snap = hetero_cluster(jobs)
    cache = tmp_path / "cache.json"
    write_cache(snap, cache, now=NOW, limit_ratio={"h100": 0.1, "bad": 2.0})
    got: dict[str, float] = {}
    read_state(cache, max_age_s=60, now=NOW, limit_ratio=got)
    assert got == {"h100": 0.1}
    cfg = OptsubConfig(cache_path=str(cache), cache_max_age_s=60, live_refresh=False, spool_dir="")
    st = get_state_full(cfg, now=NOW + 1, env={"SLURMOPT_SPOOL_DIR": str(tmp_path / "none")})
    assert st.limit_ratio == {"h100": 0.1} and "limit shares h100 0.1" in st.source
    argv = ["-p", "h100,v100", "--gpus-per-node=4", "--mem=1G", "-t", "60", "s.sh"]

    def choose(opt: OptimizeConfig) -> str | None:
        p = parse(argv, {}, "#!/bin/sh\n")
        return decide(p, st.snapshot, cfg, opt, now=NOW + 1, user="u").partition

    assert choose(OptimizeConfig()) == "v100"
    assert choose(OptimizeConfig(limit_ratio=st.limit_ratio)) == "h100"
