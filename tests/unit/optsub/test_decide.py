"""The decision on a synthetic cluster: congested A100 partition, idle (faster) H100 one."""

from __future__ import annotations

import dataclasses

import pytest

from slurmopt.model import Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optsub.config import OptsubConfig
from slurmopt.optsub.decide import decide, is_pinned, scope
from slurmopt.optsub.explain import as_json, table
from slurmopt.optsub.request import submission
from slurmopt.slurm.sbatch_args import parse
from tests.unit.optsub.conftest import NOW, make_snapshot

SCRIPT = "#!/bin/sh\ntrue\n"


def _decide(
    argv: list[str],
    script: str = SCRIPT,
    env: dict[str, str] | None = None,
    cfg: OptsubConfig | None = None,
    **snap: bool,
):
    p = parse(argv, env or {}, script)
    return decide(
        p, make_snapshot(**snap), cfg or OptsubConfig(), OptimizeConfig(), now=NOW, user="u"
    )


def test_multi_partition_gpu_job_goes_to_idle_fast_partition_and_is_retyped() -> None:
    d = _decide(["-p", "a100,h100", "--gres=gpu:a100:1", "-t", "60", "--mem=4G", "s.sh"])
    assert d.action == "rewrite"
    assert d.partition == "h100"
    assert d.argv == ("-p", "h100", "--gres=gpu:h100:1", "-t", "60", "--mem=4G", "s.sh")
    chosen = [c for c in d.candidates if c.chosen]
    assert [c.partition for c in chosen] == ["h100"]
    a100 = next(c for c in d.candidates if c.partition == "a100")
    assert a100.eligible and a100.end is not None and chosen[0].end is not None
    assert chosen[0].end < a100.end
    # h100 is faster (speed 3.0 vs 2.0): same reference runtime, shorter there
    assert chosen[0].runtime is not None and a100.runtime is not None
    assert chosen[0].runtime < a100.runtime
    text = table(d)
    assert "h100" in text and "earliest expected completion" in text and "(rewritten)" in text


def test_when_h100_is_busy_too_the_faster_one_still_wins_only_if_it_finishes_first() -> None:
    d = _decide(
        ["-p", "a100,h100", "--gpus=1", "-t", "60", "s.sh"], a100_busy=False, h100_busy=True
    )
    assert d.partition == "a100"


def test_typed_request_without_list_is_pinned() -> None:
    d = _decide(["--gres=gpu:a100:1", "-t", "60", "s.sh"])
    assert d.partition == "a100"
    h100 = next(c for c in d.candidates if c.partition == "h100")
    assert not h100.eligible and "pinned" in h100.reason
    assert "--gres=gpu:a100:1" in d.argv


def test_rewrite_typed_gpu_config_unpins() -> None:
    d = _decide(["--gres=gpu:a100:1", "-t", "60", "s.sh"], cfg=OptsubConfig(rewrite_typed_gpu=True))
    assert d.partition == "h100"
    assert "--gres=gpu:h100:1" in d.argv


def test_single_partition_is_respected() -> None:
    d = _decide(["-p", "a100", "--gpus=a100:1", "-t", "60", "s.sh"])
    assert d.argv == ("-p", "a100", "--gpus=a100:1", "-t", "60", "s.sh")
    assert d.action == "keep"


def test_single_partition_may_be_overridden_by_site() -> None:
    d = _decide(
        ["-p", "a100", "--gpus=1", "-t", "60", "s.sh"],
        cfg=OptsubConfig(respect_single_partition=False, no_partition="eligible"),
    )
    assert d.allowed[0] == "a100" and "h100" in d.allowed
    assert d.argv[:2] == ("-p", "h100")


def test_directive_partition_is_overridden_on_command_line_not_in_script() -> None:
    script = "#!/bin/sh\n#SBATCH -p a100,h100\n#SBATCH --gpus-per-node=a100:2\nsrun x\n"
    d = _decide(["-t", "30", "s.sh", "arg1"], script=script)
    assert d.argv == ("--partition=h100", "--gpus-per-node=h100:2", "-t", "30", "s.sh", "arg1")


def test_env_partition_is_overridden_on_command_line() -> None:
    d = _decide(["--gpus=1", "s.sh"], env={"SBATCH_PARTITION": "a100,h100"})
    assert d.argv == ("--partition=h100", "--gpus=1", "s.sh")


def test_constraint_excludes_gpu_type() -> None:
    d = _decide(["-p", "a100,h100", "--gpus=1", "-C", "a100", "s.sh"])
    assert d.partition == "a100"
    h = next(c for c in d.candidates if c.partition == "h100")
    assert not h.eligible and "constraint" in h.reason
    d2 = _decide(["-p", "a100,h100", "--gpus=1", "-C", "a100|h100", "s.sh"])
    assert d2.partition == "h100"


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["-p", "a", ":", "-p", "b", "s.sh"], "heterogeneous"),
        (["-M", "other", "s.sh"], "clusters"),
        (["--future-thing", "value", "s.sh"], "not fully understood"),
        (["-w", "g0", "s.sh"], "nodelist"),
    ],
)
def test_passthrough_cases(argv: list[str], why: str) -> None:
    d = _decide(argv)
    assert d.action == "passthrough"
    assert why in d.reason
    assert d.argv == tuple(argv)


def test_no_eligible_partition_passes_through() -> None:
    d = _decide(["-p", "a100,h100", "--gpus=64", "s.sh"])
    assert d.action == "passthrough" and d.argv[:2] == ("-p", "a100,h100")


def test_cpu_job_prefers_default_partition_on_tie() -> None:
    d = _decide(["-t", "60", "--mem=1G", "s.sh"], a100_busy=False)
    assert d.partition == "cpu"
    assert d.argv == ("-t", "60", "--mem=1G", "s.sh")  # default partition: nothing added


def test_policy_keep_and_json() -> None:
    d = _decide(["-p", "a100,h100", "--gpus=1", "s.sh"], cfg=OptsubConfig(policy="keep"))
    assert d.action == "passthrough"
    assert '"action":"passthrough"' in as_json(d)


def test_pinned_rule() -> None:
    sub = submission(parse(["--gres=gpu:a100:1", "s.sh"], {}, None))
    assert is_pinned(sub, OptsubConfig())
    sub2 = submission(parse(["-p", "x,y", "--gres=gpu:a100:1", "s.sh"], {}, None))
    assert not is_pinned(sub2, OptsubConfig())
    sub3 = submission(parse(["-p", "x,y", "--gres=gpu:a100:1,gpu:h100:1", "s.sh"], {}, None))
    assert is_pinned(sub3, OptsubConfig())
    assert not is_pinned(submission(parse(["--gpus=2", "s.sh"], {}, None)), OptsubConfig())


def test_scope_is_pure() -> None:
    sub, why = scope(parse(["-p", "a,b", "s.sh"], {}, None), OptsubConfig())
    assert sub is not None and sub.partitions == ("a", "b") and why == ""


def test_unknown_partition_passes_through_so_sbatch_reports_it() -> None:
    d = _decide(["-p", "nosuch,a100", "--gpus=1", "s.sh"])
    assert d.action == "passthrough" and "nosuch" in d.reason


def test_begin_in_the_future_delays_the_predicted_start() -> None:
    d = _decide(["-p", "a100,h100", "--gpus=1", "-t", "60", "--begin=now+2hours", "s.sh"])
    chosen = next(c for c in d.candidates if c.chosen)
    assert chosen.start is not None and chosen.start >= NOW + 7200


def test_pbs_directives_pass_through_unless_ignored() -> None:
    pbs = "#!/bin/sh\n#PBS -q a100\n#PBS -l walltime=1:00:00\ntrue\n"
    d = _decide(["--gpus=1", "s.sh"], script=pbs)
    assert d.action == "passthrough" and "#PBS" in d.reason
    d2 = _decide(["--ignore-pbs", "-p", "a100,h100", "--gpus=1", "s.sh"], script=pbs)
    assert d2.action == "rewrite"


def test_long_queue_beyond_the_controller_window_still_decides() -> None:
    import dataclasses

    from slurmopt.model import Job, JobRequest, JobState

    snap = make_snapshot()
    queued = tuple(
        Job(
            job_id=1000 + i,
            name="q",
            user="o",
            state=JobState.PENDING,
            partitions=("a100", "h100"),
            priority=10,
            request=JobRequest(gpus_per_node=1, time_limit_s=600),
            submit_time=NOW - 10,
        )
        for i in range(150)
    )
    snap = dataclasses.replace(snap, jobs=snap.jobs + queued)
    p = parse(["-p", "a100,h100", "--gpus=1", "-t", "10", "s.sh"], {}, SCRIPT)
    d = decide(p, snap, OptsubConfig(), OptimizeConfig(window=5), now=NOW, user="u")
    # the new job is placed even behind more queued jobs than the controller's window
    assert d.action in ("rewrite", "keep")
    assert d.partition == "h100"  # the queued jobs stay where they are listed first (a100)


def test_record_carries_pinned_and_cluster_for_the_controller() -> None:
    d = _decide(["-p", "a100,h100", "--gres=gpu:a100:1", "s.sh"])
    rec = d.to_dict()
    assert rec["pinned"] is False and rec["cluster"] == "t"
    assert rec["allowed"] == ("a100", "h100")
    d2 = _decide(["--gres=gpu:a100:1", "s.sh"])
    assert d2.to_dict()["pinned"] is True


def test_predicted_runtimes_of_running_jobs_change_the_choice(tmp_path) -> None:
    """H100s busy until their limit: a100. Predicted to free in a minute (the controller's
    runtimes, through the state cache): the faster h100 finishes first."""
    from slurmopt.optsub.state import get_state
    from slurmopt.statecache import write_cache

    argv = ["-p", "a100,h100", "--gpus=1", "-t", "60", "s.sh"]
    snap = make_snapshot(a100_busy=False, h100_busy=True)
    assert _decide(argv, a100_busy=False, h100_busy=True).partition == "a100"
    cache = tmp_path / "cache.json"
    # jobs 102 and 103 run on the h100 nodes (started 60 s ago, 24 h limits)
    write_cache(snap, cache, now=NOW, runtimes={102: 120.0, 103: 120.0, 999: 5.0})
    cfg = OptsubConfig(cache_path=str(cache), spool_dir=str(tmp_path / "spool"))
    got, source, runtimes = get_state(cfg, now=NOW + 1, env={})
    assert runtimes == {102: 120.0, 103: 120.0}  # 999: no such job in the snapshot
    assert "2 predicted runtime(s)" in source
    d = decide(
        parse(argv, {}, SCRIPT), got, cfg, OptimizeConfig(), now=NOW, user="u", runtimes=runtimes
    )
    assert d.partition == "h100"
    h100 = next(c for c in d.candidates if c.partition == "h100")
    assert h100.start is not None and h100.start <= NOW + 61


@pytest.mark.parametrize(
    "args",
    [
        ["-t", "abc"],
        ["-t", "1.5"],  # ("2-" is two days to sbatch: tests/unit/slurm/rules_tables.py)
        ["-t", "-5"],
        ["--mem=1.5G"],
        ["--gpus=a100:x"],
        ["--gres=gpu:a100:x"],
    ],
)
def test_values_sbatch_judges_pass_through_without_error(args: list[str]) -> None:
    argv = ["-p", "a100,h100", "--gres=gpu:1", *args, "s.sh"]
    sub, why = scope(parse(argv, {}, SCRIPT), OptsubConfig())
    assert sub is None and why.startswith("sbatch judges this value")
    d = _decide(argv)
    assert d.action == "passthrough" and d.argv == tuple(argv)


def test_several_gpu_types_pass_through_unchanged() -> None:
    argv = ["--gres=gpu:a100:1,gpu:h100:1", "-p", "a100,h100", "-t", "60", "s.sh"]
    d = _decide(argv)
    assert d.action == "passthrough" and d.argv == tuple(argv)
    assert d.reason == "several GPU types (a100,h100): submitted as written"
    assert not d.candidates


def _with_default_times(snap: Snapshot, **default_time_s: int) -> Snapshot:
    parts = tuple(
        dataclasses.replace(p, default_time_s=default_time_s.get(p.name, p.default_time_s))
        for p in snap.partitions
    )
    return dataclasses.replace(snap, partitions=parts)


def test_without_t_a_partition_that_would_stop_the_job_sooner_is_not_chosen() -> None:
    """a100 (listed first) gives a job without -t 4 h, h100 only 1 h. The job is
    ranked as needing a100's 4 h (at the slowest listed speed): on h100 that is
    2:40 h, longer than the 1 h Slurm would give it there."""
    snap = _with_default_times(make_snapshot(a100_busy=False), a100=4 * 3600, h100=3600)
    argv = ["-p", "a100,h100", "--gres=gpu:1", "s.sh"]
    d = decide(parse(argv, {}, SCRIPT), snap, OptsubConfig(), OptimizeConfig(), now=NOW, user="u")
    assert d.time_limits == {"a100": 4 * 3600, "h100": 3600}
    assert d.time_limit_basis == "a100 04:00:00 (first partition listed)"
    a100, h100 = d.candidates
    assert a100.eligible and a100.runtime == pytest.approx(4 * 3600) and d.partition == "a100"
    assert not h100.eligible and h100.reason == (
        "without -t the job gets 01:00:00 here (DefaultTime), less than its expected "
        "runtime 02:40:00"
    )
    text = table(d)
    assert (
        "optsub: no -t: Slurm gives the job the partition's DefaultTime (else MaxTime): "
        "a100 04:00:00, h100 01:00:00; ranked as if -t were a100 04:00:00 (first partition listed)"
    ) in text
    with_t = _decide(["-p", "a100,h100", "--gres=gpu:1", "-t", "60", "s.sh"])
    assert with_t.time_limits == {} and "no -t" not in table(with_t)


def test_without_t_the_first_listed_limit_is_the_reference() -> None:
    snap = _with_default_times(make_snapshot(a100_busy=False), a100=4 * 3600, h100=3600)
    argv = ["-p", "h100,a100", "--gres=gpu:1", "s.sh"]
    d = decide(parse(argv, {}, SCRIPT), snap, OptsubConfig(), OptimizeConfig(), now=NOW, user="u")
    assert d.time_limit_basis == "h100 01:00:00 (first partition listed)"
    runtime = {c.partition: c.runtime for c in d.candidates if c.eligible}
    assert runtime == {"h100": pytest.approx(3600 * 2 / 3), "a100": pytest.approx(3600)}
    assert d.partition == "h100"


def test_without_t_and_without_p_the_longest_limit_is_the_reference() -> None:
    snap = _with_default_times(make_snapshot(a100_busy=False), a100=4 * 3600, h100=3600)
    d = decide(
        parse(["--gres=gpu:1", "s.sh"], {}, SCRIPT),
        snap,
        OptsubConfig(),
        OptimizeConfig(),
        now=NOW,
        user="u",
    )
    assert d.time_limit_basis == "a100 04:00:00 (longest limit allowed)"  # cpu: no GPUs
    assert d.time_limits["a100"] == 4 * 3600 and d.time_limits["h100"] == 3600


def test_a_waiting_job_also_lists_the_faster_partitions() -> None:
    """A100 frees in 10 min, H100 in a day: the job waits for the A100 and lists the H100
    after it (Slurm starts it there if an H100 frees first); a job free now lists one."""
    snap = make_snapshot(a100_busy=True, h100_busy=True)
    jobs = tuple(
        dataclasses.replace(j, end_time=NOW + 600) if j.partitions == ("a100",) else j
        for j in snap.jobs
    )
    p = parse(["-p", "h100,a100", "--gpus-per-node=1", "-t", "60", "x"], {}, SCRIPT)
    d = decide(
        p,
        dataclasses.replace(snap, jobs=jobs),
        OptsubConfig(),
        OptimizeConfig(),
        now=NOW,
        user="u",
    )
    assert d.partition == "a100"
    assert d.changes["partition"] == "a100,h100"
    assert "may also start in h100" in d.reason
    free = _decide(["-p", "h100,a100", "--gpus-per-node=1", "-t", "60", "x"])
    assert free.partition == "h100" and free.changes["partition"] == "h100"
