"""plugins/job_submit.lua loaded by the testbed's real slurmctld (JobSubmitPlugins=lua)."""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slurmopt.controller import routing
from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.cycle import run_cycle
from slurmopt.fsutil import write_atomic
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.backend import CliBackend
from tests.slurm.conftest import JobTracker, show_job, wait_for

pytestmark = pytest.mark.slurm


@pytest.fixture
def routing_file(slurm_env: dict[str, str]) -> Iterator[Path]:
    path = Path(slurm_env.get("SLURMOPT_ROUTING_FILE") or os.environ["SLURMOPT_ROUTING_FILE"])
    yield path
    path.unlink(missing_ok=True)


def advise(path: Path, routes: dict[str, list[str]], age_s: int = 0) -> None:
    write_atomic(path, routing.render(routes, int(time.time()) - age_s))


def test_opted_in_jobs_follow_the_routing_file(jobs: JobTracker, routing_file: Path) -> None:
    advise(routing_file, {"gpu": ["h100", "a100"], "gpu:a100": ["a100", "gpu"], "cpu": ["cpu"]})
    untyped = jobs.submit("-H", "-p", "auto", "--gpus=1", "-t", "1", "--wrap", "sleep 1")
    typed = jobs.submit("-H", "-p", "auto", "--gres=gpu:a100:1", "-t", "1", "--wrap", "sleep 1")
    cpu = jobs.submit("-H", "-p", "auto", "-t", "1", "--wrap", "sleep 1")
    tagged = jobs.submit(
        "-H", "-p", "v100", "--comment=slurmopt:auto", "--gpus=1", "-t", "1", "--wrap", "sleep 1"
    )
    pinned = jobs.submit("-H", "-p", "v100", "--gpus=1", "-t", "1", "--wrap", "sleep 1")
    assert show_job(untyped)["Partition"] == "h100"
    assert "slurmopt:allowed=h100,a100" in show_job(untyped)["AdminComment"]
    assert show_job(typed)["Partition"] == "a100"
    assert show_job(cpu)["Partition"] == "cpu"
    assert show_job(tagged)["Partition"] == "h100"
    assert show_job(pinned)["Partition"] == "v100"
    assert show_job(pinned).get("AdminComment", "") in ("", "(null)")


def _fault(path: Path, fault: str) -> None:
    now = int(time.time())
    if fault == "missing":
        path.unlink(missing_ok=True)
    elif fault == "random-bytes":
        path.write_bytes(random.Random(13).randbytes(4096))
    elif fault == "no-generated-at":
        path.write_text("format 1\nroute gpu h100\n")
    elif fault == "stale":
        advise(path, {"gpu": ["h100"], "cpu": ["cpu"]}, age_s=3600)
    elif fault == "future":
        path.write_text(f"format 1\ngenerated_at {now + 3600}\nroute gpu h100\nroute cpu h100\n")
    elif fault == "nonexistent-partition":
        path.write_text(f"format 1\ngenerated_at {now}\nroute gpu nosuch\nroute cpu nosuch\n")
    elif fault == "route-to-auto":
        path.write_text(f"format 1\ngenerated_at {now}\nroute gpu auto\nroute cpu auto\n")
    elif fault == "huge":
        write_huge(path, now)
    else:
        raise AssertionError(fault)


def write_huge(path: Path, now: int, size: int = 30 * 1024 * 1024) -> None:
    """A well-formed 30 MB routing file (comment padding, valid routes at the end)."""
    pad = ("# " + "x" * 1021 + "\n").encode()
    with path.open("wb") as fh:
        fh.write(f"format 1\ngenerated_at {now}\n".encode())
        for _ in range(size // len(pad)):
            fh.write(pad)
        fh.write(b"route gpu h100\nroute cpu cpu\n")


FAULTS = [
    "missing",
    "random-bytes",
    "no-generated-at",
    "stale",
    "future",
    "nonexistent-partition",
    "route-to-auto",
    "huge",
]


def ctld_log(slurm_env: dict[str, str]) -> Path:
    return Path(slurm_env["SLURMOPT_TESTBED_DIR"]) / "log" / "slurmctld.log"


@pytest.mark.parametrize("fault", FAULTS)
def test_jobs_are_accepted_and_run_when_the_advice_is_unusable(
    jobs: JobTracker, routing_file: Path, slurm_env: dict[str, str], fault: str
) -> None:
    """Each job is accepted exactly once, never to `auto`, and runs where the user could."""
    _fault(routing_file, fault)
    log = ctld_log(slurm_env)
    log_at = log.stat().st_size
    tag = f"fo-{fault}-{os.getpid()}"
    cpu = jobs.submit("-J", tag, "-p", "auto", "-t", "1", "--wrap", "sleep 1")
    gpu = jobs.submit("-J", tag, "-p", "auto", "--gpus-per-node=1", "-t", "1", "--wrap", "sleep 1")
    typed = jobs.submit("-J", tag, "-p", "auto", "--gres=gpu:t4:1", "-t", "1", "--wrap", "sleep 1")
    listed = jobs.submit("-J", tag, "-p", "auto,a100", "--gpus=1", "-t", "1", "--wrap", "sleep 1")
    names = subprocess.run(
        ["squeue", "-h", "-t", "all", "-n", tag, "-o", "%i"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert sorted(map(int, names)) == sorted([cpu, gpu, typed, listed])  # each exactly once
    assert show_job(listed)["Partition"] == "a100"  # the rest of the user's own list
    for job in (cpu, gpu, typed, listed):
        assert "auto" not in show_job(job)["Partition"].split(",")
    # Each job runs: it starts on a node that has what it asked for.
    started = wait_for(
        lambda: all(show_job(j)["JobState"] in ("RUNNING", "COMPLETED") for j in (cpu, gpu, typed)),
        timeout=60,
    )
    assert started
    assert show_job(gpu)["NodeList"].startswith("gpu-")
    assert show_job(typed)["NodeList"].startswith("gpu-t")
    with log.open("rb") as fh:
        fh.seek(log_at)
        ours = [line for line in fh.read().splitlines() if b"slurmopt" in line]
    assert ours, "the plugin logged nothing"
    for line in ours:
        assert all(32 <= b < 127 or b == 9 for b in line), line


def test_a_route_to_a_partition_the_account_may_not_use_is_dropped(
    jobs: JobTracker, routing_file: Path
) -> None:
    """Routes are validated against Slurm's partition list (here: existence, order kept)."""
    now = int(time.time())
    routing_file.write_text(f"format 1\ngenerated_at {now}\nroute gpu nosuch,auto,v100,a100\n")
    job = jobs.submit("-H", "-p", "auto", "--gpus=1", "-t", "1", "--wrap", "sleep 1")
    assert show_job(job)["Partition"] == "v100"
    assert show_job(job)["AdminComment"].endswith("slurmopt:allowed=v100,a100")


def test_the_controller_writes_the_advice_the_plugin_reads(
    jobs: JobTracker, routing_file: Path, tmp_path: Path
) -> None:
    backend = CliBackend()
    run_cycle(
        backend,
        ControllerConfig(mode="observe"),
        OptimizeConfig(),
        store=None,
        lock_path=tmp_path / "lock",
        cache_path=tmp_path / "cache.json",
        routing_path=routing_file,
    )
    _, routes = routing.parse(routing_file.read_text())
    assert routes["cpu"] == ["cpu"]
    assert set(routes["gpu:t4"]) == {"t4"}
    job = jobs.submit("-H", "-p", "auto", "--gpus=1", "-t", "1", "--wrap", "sleep 1")
    assert show_job(job)["Partition"] == routes["gpu"][0]
    assert show_job(job)["AdminComment"].endswith(",".join(routes["gpu"]))


@pytest.fixture
def h100_for_ml_only() -> Iterator[None]:
    """The h100 partition admits only account ml (AllowAccounts), restored afterwards."""
    update = ["scontrol", "update", "PartitionName=h100"]
    subprocess.run([*update, "AllowAccounts=ml"], check=True, capture_output=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run([*update, "AllowAccounts=ALL"], check=True, capture_output=True, timeout=30)


def test_the_fallback_set_respects_partition_access_rules(
    jobs: JobTracker, routing_file: Path, h100_for_ml_only: None
) -> None:
    """Stale advice (it still teaches the GPU layout): each job gets the partitions with
    GPUs that admit its account, never one that would refuse it."""
    advise(routing_file, {"gpu": ["h100"]}, age_s=3600)
    text = routing_file.read_text() + "".join(
        f"gpus {p} {t}\n"
        for p, t in {
            "cpu": "-",
            "h100": "h100",
            "a100": "a100",
            "gpu": "a100,h100",
            "v100": "v100",
            "t4": "t4",
        }.items()
    )
    routing_file.write_text(text)
    argv = ("-H", "-p", "auto", "--gpus=1", "-t", "1", "--wrap", "sleep 1")
    research = jobs.submit("-A", "research", *argv)
    ml = jobs.submit("-A", "ml", *argv)
    parts = {j: set(show_job(j)["Partition"].split(",")) for j in (research, ml)}
    assert parts[research] == {"a100", "gpu", "t4", "v100"}  # h100 refuses research
    assert parts[ml] == {"a100", "gpu", "h100", "t4", "v100"}
    assert show_job(research)["Account"] == "research" and show_job(ml)["Account"] == "ml"
