"""The command runner: error mapping (fake process layer) and the real process layer."""

from __future__ import annotations

import sys
import time

import pytest

from slurmopt.errors import SlurmCommandError, SlurmUnavailable
from slurmopt.slurm.runner import Runner, check_result

from .fakes import RECORDED, FakeRunner, fail, ok


@pytest.mark.parametrize(
    "stderr",
    [
        "sinfo: error: slurm_load_partitions: Unable to contact slurm controller (connect failure)",
        "squeue: error: Socket timed out on send/recv operation",
        "scontrol: error: Connection refused",
        "sbatch: error: Batch job submission failed: Zero Bytes were transmitted or received",
        "sinfo: error: Could not establish a configuration source",
        'sinfo: error: Munge encode failed: Failed to access "/run/munge/munge.socket.2"',
    ],
)
def test_unreachable_controller_maps_to_unavailable(stderr: str) -> None:
    argv = ("sinfo", "--json")
    runner = FakeRunner({argv: fail(argv, stderr)})
    with pytest.raises(SlurmUnavailable, match="unreachable"):
        runner.run(list(argv))
    # Even a caller that inspects return codes itself gets the typed error.
    with pytest.raises(SlurmUnavailable):
        runner.run(list(argv), check=False)


def test_other_failure_maps_to_command_error_with_details() -> None:
    argv = ("scontrol", "update", "JobId=1", "Partition=h100")
    runner = FakeRunner({argv: fail(argv, "Job is no longer pending execution for job 1")})
    with pytest.raises(SlurmCommandError) as info:
        runner.run(list(argv))
    err = info.value
    assert err.argv == list(argv) and err.returncode == 1
    assert "no longer pending" in err.stderr
    assert runner.run(list(argv), check=False).returncode == 1


def test_recorded_json_refusal_on_2205_is_a_command_error() -> None:
    text = (RECORDED / "22.05" / "scontrol_show_nodes.json.err").read_text()
    argv = ("scontrol", "show", "nodes", "--json")
    with pytest.raises(SlurmCommandError, match="unrecognized option"):
        check_result(fail(argv, text))


def test_success_passes_through() -> None:
    argv = ("sinfo", "--version")
    assert (
        FakeRunner({argv: ok(argv, "slurm 24.11.5\n")}).run(list(argv)).stdout.startswith("slurm")
    )


def test_rejects_shell_strings() -> None:
    with pytest.raises(TypeError):
        Runner().run("sinfo --json")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Runner().run([])


def test_missing_command_is_unavailable() -> None:
    with pytest.raises(SlurmUnavailable, match="not found"):
        Runner().run(["slurmopt-no-such-command-xyz"], timeout=5)


def test_timeout_is_unavailable_and_does_not_hang() -> None:
    start = time.monotonic()
    with pytest.raises(SlurmUnavailable, match="no answer within"):
        Runner().run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert time.monotonic() - start < 10


def test_real_process_env_and_input() -> None:
    code = "import os, sys; print(os.environ['SLURMOPT_T'], sys.stdin.read().strip())"
    runner = Runner({"SLURMOPT_T": "base"})
    res = runner.run([sys.executable, "-c", code], input="piped", timeout=20)
    assert res.stdout.split() == ["base", "piped"]
    res = runner.run([sys.executable, "-c", code], env={"SLURMOPT_T": "call"}, timeout=20)
    assert res.stdout.split()[0] == "call"
    assert res.duration_s >= 0
