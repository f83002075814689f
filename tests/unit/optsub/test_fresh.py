"""The live refresh (one squeue) on top of the state cache: ended, started, new running jobs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from slurmopt.model import JobState
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from slurmopt.optsub import fresh
from slurmopt.optsub.config import OptsubConfig
from slurmopt.optsub.state import get_state
from slurmopt.slurm.live import parse_live
from slurmopt.statecache import write_cache
from tests.unit.optsub.conftest import NOW, make_snapshot


def test_parse_live_lines_of_22_05_and_24_11() -> None:
    text = (
        "101|R|a100|1:02:03|32|gres:gpu:a100:4|g1|other\n"
        "7|PD|a100,h100|0:00|2|gres/gpu:2||me\n"
        "8|CG|h100|1-00:00:05|4|N/A|g[2-3]|other\n"
        "garbage line\n"
    )
    live = parse_live(text)
    assert set(live) == {101, 7, 8}
    assert (live[101].state, live[101].elapsed, live[101].gpus, live[101].gpu_type) == (
        "R",
        3723,
        4,
        "a100",
    )
    assert (live[7].gpus, live[7].gpu_type, live[7].nodes) == (2, None, "")
    assert (live[8].elapsed, live[8].gpus) == (86405, 0)


def test_ended_jobs_give_their_nodes_back() -> None:
    snap = make_snapshot(a100_busy=True, h100_busy=True)
    live = {
        100: fresh.LiveJob.of("R", "a100", 60, 32, 4, "a100", "g0"),
        101: fresh.LiveJob.of("R", "a100", 60, 32, 4, "a100", "g1"),
    }  # 102 and 103 (the H100 jobs) ended
    out, note = fresh.apply_live(
        snap, live, now=NOW, user="me", cached=[j.job_id for j in snap.jobs]
    )
    assert note.startswith("live: 2 ended")
    assert {j.job_id for j in out.jobs} == {100, 101}
    g2 = out.node("g2")
    assert (g2.cpus_alloc, g2.memory_alloc_mb, g2.gpus_used["h100"]) == (0, 0, 0)
    assert out.node("g0").gpus_used["a100"] == 4
    problem = Problem.build(out, OptimizeConfig(), now=NOW)
    assert problem.base.cap_gpu[2] == 4


def test_a_pending_job_that_started_runs_where_squeue_says() -> None:
    from dataclasses import replace

    from slurmopt.model import Job, JobRequest

    snap = make_snapshot(a100_busy=False, h100_busy=False)
    pend = Job(
        job_id=7,
        name="x",
        user="other",
        state=JobState.PENDING,
        partitions=("a100", "h100"),
        request=JobRequest(gpus_per_node=2, time_limit_s=3600),
        submit_time=NOW - 5,
    )
    snap = replace(snap, jobs=(pend,))
    live = {7: fresh.LiveJob.of("R", "h100", 30, 1, 2, None, "g2")}
    out, note = fresh.apply_live(snap, live, now=NOW, user="me", cached=[7])
    job = out.jobs[0]
    assert job.state is JobState.RUNNING and job.nodes == ("g2",) and job.partitions == ("h100",)
    assert job.start_time == NOW - 30
    assert "1 started" in note


def test_unknown_running_job_is_added_with_its_gpus() -> None:
    snap = make_snapshot(a100_busy=False, h100_busy=False)
    live = {555: fresh.LiveJob.of("R", "h100", 10, 8, 4, "h100", "g2")}
    out, note = fresh.apply_live(snap, live, now=NOW, user="me", cached=[])
    assert "1 new running" in note
    problem = Problem.build(out, OptimizeConfig(), now=NOW)
    # g2 is full now: no H100 GPU free before the job's (unknown) end
    assert problem.base.gpu[2][0] == 0


def test_private_data_hides_other_users_jobs_so_nothing_is_dropped() -> None:
    snap = make_snapshot(a100_busy=True, h100_busy=True)
    out, note = fresh.apply_live(snap, {}, now=NOW, user="me", cached=[j.job_id for j in snap.jobs])
    assert out is snap
    assert "skipped" in note


def test_get_state_refreshes_the_cache_with_a_squeue(tmp_path: Path) -> None:
    """A fake squeue (a script) says the H100 jobs ended: optsub sees the H100s free."""
    snap = make_snapshot(a100_busy=True, h100_busy=True, now=NOW)
    cache = tmp_path / "cache.json"
    write_cache(snap, cache)
    squeue = tmp_path / "squeue"
    squeue.write_text(
        f"#!{sys.executable}\n"
        "print('100|R|a100|1:00|32|gres:gpu:a100:4|g0|other')\n"
        "print('101|R|a100|1:00|32|gres:gpu:a100:4|g1|other')\n"
    )
    squeue.chmod(0o755)
    env = {**os.environ, "SLURMOPT_STATE_CACHE": str(cache), "SLURMOPT_SQUEUE": str(squeue)}
    env["SLURMOPT_SPOOL_DIR"] = str(tmp_path)
    cfg = OptsubConfig(cache_max_age_s=3600.0)
    got, source, _ = get_state(cfg, now=NOW + 10, env=env, user="me")
    assert {j.job_id for j in got.jobs} == {100, 101}
    assert "live: 2 ended" in source
    off, source_off, _ = get_state(
        OptsubConfig(cache_max_age_s=3600.0, live_refresh=False), now=NOW + 10, env=env, user="me"
    )
    assert len(off.jobs) == 4 and "live" not in source_off
    bad = {**env, "SLURMOPT_SQUEUE": str(tmp_path / "missing")}
    kept, source_bad, _ = get_state(cfg, now=NOW + 10, env=bad, user="me")
    assert len(kept.jobs) == 4 and "live refresh failed" in source_bad


def test_controller_cache_with_queue_digest_serves_optsub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The controller writes the slim snapshot + digest; optsub ranks the same as on the
    full queue, and a job the refresh shows ended frees its node in the digest too."""
    from dataclasses import replace

    from slurmopt.controller import cycle
    from slurmopt.controller.cycle import write_state_cache

    monkeypatch.setattr(cycle, "DIGEST_MIN_PENDING", 0)  # a long queue, in short
    from slurmopt.model import Job, JobRequest
    from slurmopt.optsub.decide import decide
    from slurmopt.optsub.state import get_state_full
    from slurmopt.slurm.sbatch_args import combine, parse_command_line

    snap = make_snapshot(a100_busy=True, h100_busy=True, now=NOW)
    queue = tuple(
        Job(
            job_id=200 + i,
            name="q",
            user="other",
            state=JobState.PENDING,
            partitions=("a100",),
            request=JobRequest(gpus_per_node=4, gpu_type="a100", time_limit_s=3600),
            priority=10,
            submit_time=NOW - 50,
        )
        for i in range(3)
    )
    snap = replace(snap, jobs=snap.jobs + queue)
    cache = tmp_path / "cache.json"
    write_state_cache(snap, OptimizeConfig(), cache, {})
    squeue = tmp_path / "squeue"
    lines = [
        f"{j.job_id}|R|{j.partitions[0]}|1:00|32|gres:gpu:4|{j.nodes[0]}|other"
        for j in snap.jobs
        if j.running
    ]
    lines += [f"{j.job_id}|PD|a100|0:00|1|gres:gpu:a100:4||other" for j in queue]
    squeue.write_text(f"#!{sys.executable}\nprint({chr(10).join(lines)!r})\n")
    squeue.chmod(0o755)
    env = {**os.environ, "SLURMOPT_STATE_CACHE": str(cache), "SLURMOPT_SQUEUE": str(squeue)}
    env["SLURMOPT_SPOOL_DIR"] = str(tmp_path)
    cfg = OptsubConfig(cache_max_age_s=3600.0)
    st = get_state_full(cfg, now=NOW, env=env, user="me")
    assert st.queue is not None and not st.snapshot.pending
    assert "queue digest: 3 pending" in st.source
    parsed = combine(
        parse_command_line(["-p", "a100,h100", "--gres=gpu:a100:4", "-t", "60", "x"]), {}, None
    )
    with_digest = decide(
        parsed, st.snapshot, cfg, OptimizeConfig(), now=NOW, user="me", queue=st.queue
    )
    full = decide(parsed, snap, cfg, OptimizeConfig(), now=NOW, user="me")
    assert [(c.partition, c.start) for c in with_digest.candidates] == [
        (c.partition, c.start) for c in full.candidates
    ]
    # the H100 jobs ended since the cache: the refresh frees g2/g3 in the digest as well
    lines = [x for x in lines if "|h100|" not in x]
    squeue.write_text(f"#!{sys.executable}\nprint({chr(10).join(lines)!r})\n")
    st = get_state_full(cfg, now=NOW + 5, env=env, user="me")
    d = decide(parsed, st.snapshot, cfg, OptimizeConfig(), now=NOW + 5, user="me", queue=st.queue)
    assert d.partition == "h100"
    h = next(c for c in d.candidates if c.partition == "h100")
    assert h.start == NOW + 5


def test_a_short_queue_is_cached_as_it_is(tmp_path: Path) -> None:
    from dataclasses import replace

    from slurmopt.controller.cycle import write_state_cache
    from slurmopt.model import Job, JobRequest
    from slurmopt.statecache import read_state

    snap = make_snapshot(now=NOW)
    job = Job(
        job_id=9,
        name="q",
        user="u",
        state=JobState.PENDING,
        partitions=("a100",),
        request=JobRequest(gpus_per_node=1, time_limit_s=60),
    )
    write_state_cache(replace(snap, jobs=(*snap.jobs, job)), OptimizeConfig(), tmp_path / "c", {})
    got, _, digest = read_state(tmp_path / "c", max_age_s=60, now=NOW)
    assert digest is None and 9 in {j.job_id for j in got.jobs}


def test_jobs_the_cache_and_the_spool_do_not_know_are_added_from_squeue() -> None:
    """Submitted since the cache (e.g. records the controller already ingested): a running
    one with its limit, a pending one queued with its GPUs; held ones are left out."""
    text = (
        "501|R|h100|0:10|2|gres:gpu:h100:4|g2|other|10:00|1|100|None\n"
        "502|PD|a100,h100|0:00|2|gres:gpu:2||other|30:00|1|500|Resources\n"
        "503|PD|a100|0:00|2|gres:gpu:2||other|30:00|1|500|JobHeldUser\n"
    )
    live = parse_live(text)
    assert (live[501].limit, live[502].priority, live[503].reason) == (600, 500, "JobHeldUser")
    snap = make_snapshot(a100_busy=False, h100_busy=False)
    out, note = fresh.apply_live(snap, live, now=NOW, user="me", cached=[])
    assert "1 new running, 1 new pending" in note
    by_id = {j.job_id: j for j in out.jobs}
    assert by_id[501].running and by_id[501].request.time_limit_s == 600
    assert by_id[502].pending and by_id[502].partitions == ("a100", "h100")
    assert by_id[502].request.gpus_per_node == 2 and 503 not in by_id


def _answering_squeue(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A fake squeue that prints answer.txt, then logs that it ran."""
    answer, log = tmp_path / "answer.txt", tmp_path / "ran.log"
    squeue = tmp_path / "squeue"
    squeue.write_text(
        f"#!{sys.executable}\n"
        f"import sys\nsys.stdout.write(open({str(answer)!r}).read())\n"
        f"open({str(log)!r}, 'a').write('ran\\n')\n"
    )
    squeue.chmod(0o755)
    return squeue, answer, log


ALL_RUNNING = "".join(
    f"{100 + i}|R|{t}|1:00|32|gres:gpu:{t}:4|g{i}|other\n"
    for i, t in enumerate(("a100", "a100", "h100", "h100"))
)
H100_ENDED = "".join(ALL_RUNNING.splitlines(keepends=True)[:2])


def test_refresh_started_early_is_used_when_newer_than_the_cache(tmp_path: Path) -> None:
    """optsub starts the refresh's squeue before it reads the cache (issue 16): its answer is
    used, and squeue runs once, when it started after the cached snapshot was taken."""
    import time

    from slurmopt.optsub.state import get_state_full
    from slurmopt.slurm.live import Started

    taken = int(time.time()) - 60
    cache = tmp_path / "cache.json"
    write_cache(make_snapshot(a100_busy=True, h100_busy=True, now=taken), cache)
    squeue, answer, log = _answering_squeue(tmp_path)
    answer.write_text(H100_ENDED)
    env = {**os.environ, "SLURMOPT_STATE_CACHE": str(cache), "SLURMOPT_SPOOL_DIR": str(tmp_path)}
    env["SLURMOPT_SQUEUE"] = str(squeue)
    cfg = OptsubConfig(cache_max_age_s=3600.0)
    st = get_state_full(cfg, now=taken + 10, env=env, user="me", started=Started(str(squeue), env))
    assert "live: 2 ended" in st.source
    assert {j.job_id for j in st.snapshot.jobs} == {100, 101}
    assert log.read_text() == "ran\n"


def test_refresh_started_before_the_cached_snapshot_runs_again(tmp_path: Path) -> None:
    """A squeue started before the controller took the cached snapshot may describe an older
    cluster than the cache: it is discarded and squeue runs again (the refresh stays newer)."""
    import time

    from slurmopt.optsub.state import get_state_full
    from slurmopt.slurm.live import Started

    squeue, answer, log = _answering_squeue(tmp_path)
    answer.write_text(ALL_RUNNING)  # what the early squeue sees
    env = {**os.environ, "SLURMOPT_SPOOL_DIR": str(tmp_path), "SLURMOPT_SQUEUE": str(squeue)}
    early = Started(str(squeue), env)
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)
    taken = int(early.at) + 5  # the controller's snapshot, after the early squeue started
    cache = tmp_path / "cache.json"
    write_cache(make_snapshot(a100_busy=True, h100_busy=True, now=taken), cache)
    answer.write_text(H100_ENDED)  # what a squeue run now sees
    env["SLURMOPT_STATE_CACHE"] = str(cache)
    cfg = OptsubConfig(cache_max_age_s=3600.0)
    st = get_state_full(cfg, now=taken + 10, env=env, user="me", started=early)
    assert "live: 2 ended" in st.source
    assert log.read_text() == "ran\nran\n"


def test_started_squeue_missing_slow_or_failing(tmp_path: Path) -> None:
    import subprocess

    from slurmopt.slurm.live import Started

    with pytest.raises(FileNotFoundError):
        Started(str(tmp_path / "missing")).result(1.0)
    slow = tmp_path / "slow"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    slow.chmod(0o755)
    run = Started(str(slow))
    proc = run._proc
    with pytest.raises(subprocess.TimeoutExpired):
        run.result(0.2)
    assert proc is not None and proc.returncode is not None  # killed and reaped
    bad = tmp_path / "bad"
    bad.write_text(f"#!{sys.executable}\nimport sys\nsys.exit('slurm_load_jobs error: boom')\n")
    bad.chmod(0o755)
    with pytest.raises(RuntimeError, match="squeue failed: slurm_load_jobs error: boom"):
        Started(str(bad)).result(10.0)
    unused = Started(str(slow))
    proc = unused._proc
    unused.discard()
    unused.discard()
    assert proc is not None and proc.returncode is not None
