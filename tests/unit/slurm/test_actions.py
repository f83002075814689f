"""Actions through a fake runner: submit, move (GPU rewrite, EAGAIN retry), nice,
priority, hold / release, drain / resume, and their typed outcomes."""

from __future__ import annotations

import pytest

from slurmopt.errors import JobNotPending, SlurmCommandError, SlurmParseError, SlurmUnsupported
from slurmopt.model import JobRequest
from slurmopt.slurm import updates
from slurmopt.slurm.backend import CliBackend
from slurmopt.slurm.versions import SlurmVersion

from .fakes import RECORDED, FakeRunner, fail, ok, recorded_runner

V2205 = SlurmVersion(22, 5, 8)
V2411 = SlurmVersion(24, 11, 5)


def backend(runner: FakeRunner, version: str = "slurm 24.11.5") -> tuple[CliBackend, list[float]]:
    runner.table.setdefault(("sinfo", "--version"), ok(("sinfo", "--version"), version))
    sleeps: list[float] = []
    return CliBackend(runner, sleep=sleeps.append), sleeps


# -- sbatch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "job_id"),
    [
        ("42\n", 42),
        ("42;cluster1\n", 42),
        ("site banner: welcome\nquota ok\n17\n", 17),
        ("17\nwrapper: job routed to gpu queue\n", 17),
        ("Submitted batch job 99\n", 99),
        ("  7  \n", 7),
    ],
)
def test_extract_job_id(stdout: str, job_id: int) -> None:
    assert updates.extract_job_id(stdout) == job_id


@pytest.mark.parametrize("stdout", ["", "error: something\n", "job 12 queued\n"])
def test_extract_job_id_refuses_guessing(stdout: str) -> None:
    with pytest.raises(SlurmParseError):
        updates.extract_job_id(stdout)


@pytest.mark.parametrize("version", ["22.05", "24.11", "26.05"])
def test_recorded_sbatch_outputs(version: str) -> None:
    for n in range(1, 9):
        text = (RECORDED / version / f"sbatch_parsable_j{n}.txt").read_text()
        assert updates.extract_job_id(text) == n


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-p", "a100", "job.sh", "arg"], ["sbatch", "--parsable", "-p", "a100", "job.sh", "arg"]),
        (["sbatch", "--wrap", "true"], ["sbatch", "--parsable", "--wrap", "true"]),
        (["/usr/bin/sbatch", "x.sh"], ["/usr/bin/sbatch", "--parsable", "x.sh"]),
    ],
)
def test_sbatch_argv(argv: list[str], expected: list[str]) -> None:
    assert updates.sbatch_argv(argv) == expected


def test_submit_feeds_script_on_stdin() -> None:
    argv = ("sbatch", "--parsable", "-p", "cpu")
    runner = FakeRunner({argv: ok(argv, "banner\n123;c1\n")})
    be, _ = backend(runner)
    assert be.submit(["-p", "cpu"], script="#!/bin/sh\ntrue\n") == 123
    assert runner.inputs[-1] == "#!/bin/sh\ntrue\n"


def test_submit_is_never_retried() -> None:
    argv = ("sbatch", "--parsable", "x.sh")
    runner = FakeRunner({argv: fail(argv, "Resource temporarily unavailable")})
    be, _ = backend(runner)
    with pytest.raises(SlurmCommandError):
        be.submit(["x.sh"])
    assert runner.calls.count(argv) == 1


# -- move -----------------------------------------------------------------------

TYPED = JobRequest(gpus_per_node=1, gpu_type="a100", gres="gres/gpu:a100:1")


@pytest.mark.parametrize(
    ("request_", "gpu_type", "version", "words"),
    [
        (TYPED, "h100", V2411, ["Gres=gpu:h100:1"]),
        (TYPED, "", V2411, ["Gres=gpu:1"]),
        (TYPED, "a100", V2411, []),
        (TYPED, None, V2411, []),
        (JobRequest(), "h100", V2411, []),
        (
            JobRequest(gpus_per_node=2, gpu_type="a100", gres="gres/gpu:a100:2,gres/shard:1"),
            "h100",
            V2411,
            ["Gres=gpu:h100:2,shard:1"],
        ),
        (
            JobRequest(gpus_per_job=2, tres_per_job="gres/gpu:2"),
            "h100",
            V2411,
            ["TresPerJob=gres/gpu:h100:2"],
        ),
        (
            JobRequest(
                gpus_per_task=1, cpus_per_task=4, gpu_type="a100", tres_per_task="gres/gpu:a100:1"
            ),
            "v100",
            V2411,
            ["TresPerTask=cpu=4,gres/gpu:v100:1"],
        ),
    ],
)
def test_gpu_update_args(
    request_: JobRequest, gpu_type: str | None, version: SlurmVersion, words: list[str]
) -> None:
    assert updates.gpu_update_args(request_, gpu_type, version) == words


@pytest.mark.parametrize(
    ("request_", "gpu_type"),
    [
        (TYPED, "h100"),
        (TYPED, ""),
        (JobRequest(gpus_per_node=1, gres="gres/gpu:1"), "h100"),
        (JobRequest(gpus_per_job=2, tres_per_job="gres/gpu:2"), "v100"),
    ],
)
def test_no_gpu_type_change_on_2205(request_: JobRequest, gpu_type: str) -> None:
    with pytest.raises(SlurmUnsupported, match=r"22\.05"):
        updates.gpu_update_args(request_, gpu_type, V2205)
    # Same type, or no rewrite asked: fine on 22.05 too.
    assert updates.gpu_update_args(TYPED, "a100", V2205) == []
    assert updates.gpu_update_args(TYPED, None, V2205) == []


def test_move_with_retype_on_2205_changes_nothing() -> None:
    runner = FakeRunner()
    be, _ = backend(runner, "slurm-wlm 22.05.8")
    with pytest.raises(SlurmUnsupported):
        be.move(5, "h100", gpu_type="h100", current_request=TYPED)
    assert not [c for c in runner.calls if c[:2] == ("scontrol", "update")]


def test_move_rewrites_gres_in_the_same_call() -> None:
    argv = ("scontrol", "update", "JobId=5", "Partition=h100", "Gres=gpu:h100:1")
    runner = FakeRunner({argv: ok(argv)})
    be, _ = backend(runner)
    res = be.move(5, "h100", gpu_type="h100", current_request=TYPED)
    assert res.argv == argv and res.attempts == 1 and res.action == "move"


def test_move_to_several_partitions() -> None:
    argv = ("scontrol", "update", "JobId=7", "Partition=a100,h100")
    runner = FakeRunner({argv: ok(argv)})
    be, _ = backend(runner)
    assert be.move(7, ["a100", "h100"]).argv == argv


def test_move_retries_eagain_with_backoff() -> None:
    argv = ("scontrol", "update", "JobId=3", "Partition=a100")
    eagain = fail(argv, (RECORDED / "26.05" / "act_update_partition_j3.txt.err").read_text())
    runner = FakeRunner({argv: [eagain] * 17 + [ok(argv)]})
    be, sleeps = backend(runner, "slurm 26.05.5")
    res = be.move(3, "a100")
    assert res.attempts == 18 and runner.calls.count(argv) == 18
    assert sleeps[:3] == [0.05, 0.1, 0.2] and max(sleeps) == be.backoff_max_s


def test_move_gives_up_after_bounded_eagain() -> None:
    argv = ("scontrol", "update", "JobId=3", "Partition=a100")
    runner = FakeRunner({argv: fail(argv, "Resource temporarily unavailable for job 3")})
    be, sleeps = backend(runner)
    be.eagain_attempts = 4
    with pytest.raises(SlurmCommandError, match="temporarily unavailable"):
        be.move(3, "a100")
    assert runner.calls.count(argv) == 4 and len(sleeps) == 3


@pytest.mark.parametrize(
    "stderr",
    [
        (RECORDED / "24.11" / "act_update_partition_running_j1.txt.err").read_text(),
        "scontrol: error: Invalid job id specified for job 99",
        "Job has already finished for job 1",
    ],
)
def test_move_of_a_started_job_is_job_not_pending(stderr: str) -> None:
    argv = ("scontrol", "update", "JobId=1", "Partition=h100")
    runner = FakeRunner({argv: fail(argv, stderr)})
    be, sleeps = backend(runner)
    with pytest.raises(JobNotPending) as info:
        be.move(1, "h100")
    assert info.value.job_id == "1" and sleeps == []


def test_move_other_refusal_is_command_error() -> None:
    argv = ("scontrol", "update", "JobId=7", "Partition=a100,h100")
    text = (RECORDED / "22.05" / "act_top_j7.txt.err").read_text()
    runner = FakeRunner({argv: fail(argv, text)})
    be, _ = backend(runner)
    with pytest.raises(SlurmCommandError):
        be.move(7, ["a100", "h100"])


def test_move_reads_the_request_when_not_given() -> None:
    runner = recorded_runner("24.11")
    argv = ("scontrol", "update", "JobId=5", "Partition=a100", "Gres=gpu:a100:1")
    runner.table[argv] = ok(argv)
    be = CliBackend(runner)
    assert be.move(5, "a100", gpu_type="a100").argv == argv


def test_move_with_type_of_a_running_job_is_job_not_pending() -> None:
    be = CliBackend(recorded_runner("22.05"))
    with pytest.raises(JobNotPending):
        be.move(1, "h100", gpu_type="h100")
    with pytest.raises(JobNotPending):
        be.move(12345, "h100", gpu_type="h100")


@pytest.mark.parametrize("bad", ["", "a b", ["a100", "h 100"]])
def test_move_rejects_bad_partition_names(bad: str | list[str]) -> None:
    be, _ = backend(FakeRunner())
    with pytest.raises(ValueError):
        be.move(1, bad)


# -- nice, priority, hold, release, nodes ----------------------------------------


def test_nice_priority_hold_release() -> None:
    cmds = {
        ("scontrol", "update", "JobId=5", "Nice=10"),
        ("scontrol", "update", "JobId=3", "Priority=5000"),
        ("scontrol", "hold", "3"),
        ("scontrol", "release", "3"),
    }
    runner = FakeRunner({c: ok(c) for c in cmds})
    be, _ = backend(runner)
    assert be.set_nice(5, 10).action == "nice"
    assert be.set_priority(3, 5000).target == "3"
    assert be.hold(3).argv == ("scontrol", "hold", "3")
    plain = be.release(3)
    assert plain.argv == ("scontrol", "release", "3")
    again = be.release(3, priority=5000)
    assert again.argv == (
        "scontrol",
        "release",
        "3",
        "scontrol",
        "update",
        "JobId=3",
        "Priority=5000",
    )
    assert runner.calls[-2:] == [
        ("scontrol", "release", "3"),
        ("scontrol", "update", "JobId=3", "Priority=5000"),
    ]


def test_drain_and_resume() -> None:
    drain = ("scontrol", "update", "NodeName=cpu2", "State=DRAIN", "Reason=slurmopt test: gpu xid")
    resume = ("scontrol", "update", "NodeName=cpu2", "State=RESUME")
    runner = FakeRunner({drain: ok(drain), resume: ok(resume)})
    be, _ = backend(runner)
    assert be.drain_node("cpu2", "slurmopt test: gpu xid").argv == drain
    assert be.resume_node("cpu2").argv == resume
    with pytest.raises(ValueError):
        be.drain_node("cpu2", " ")
    with pytest.raises(ValueError):
        be.resume_node("cpu 2")


def test_node_extra_through_the_backend_with_eagain_retried() -> None:
    from slurmopt.telemetry.nodectl import BackendNodeControl

    argv = ("scontrol", "update", "NodeName=cpu2", "Extra=gpu:ok temp=40")
    eagain = fail(argv, (RECORDED / "26.05" / "act_update_partition_j3.txt.err").read_text())
    runner = FakeRunner({argv: [eagain, eagain, ok(argv)]})
    be, sleeps = backend(runner)
    BackendNodeControl(be).set_extra("cpu2", "gpu:ok temp=40")
    assert runner.calls.count(argv) == 3 and len(sleeps) == 2
    with pytest.raises(ValueError):
        be.set_node_extra("cpu 2", "x")


def test_node_read_without_a_snapshot() -> None:
    from slurmopt.telemetry.nodectl import BackendNodeControl

    runner = recorded_runner("24.11")
    node = BackendNodeControl(CliBackend(runner)).node("gpu-a1")
    assert node is not None and node.gpus == {"a100": 4}
    assert not any(c[:2] == ("squeue", "--all") for c in runner.calls)  # no jobs read


def test_jobs_filtered_client_side_on_2205() -> None:
    be = CliBackend(recorded_runner("22.05"))
    assert {j.job_id for j in be.jobs(partitions=["cpu"])} == {6, 8}
    assert [j.job_id for j in be.jobs(job_ids=[3])] == [3]
    job = be.job(4)
    assert job is not None and job.held
    assert be.job(999) is None


def test_version_falls_back_to_scontrol() -> None:
    argv = ("scontrol", "--version")
    runner = FakeRunner({argv: ok(argv, "slurm 24.11.5\n")})  # sinfo "not recorded": rc 1
    assert str(CliBackend(runner).version()) == "24.11.5"
    assert runner.calls == [("sinfo", "--version"), argv]
