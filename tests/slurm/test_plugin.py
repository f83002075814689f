"""plugins/job_submit.lua loaded by the testbed's real slurmctld (JobSubmitPlugins=lua)."""

from __future__ import annotations

import os
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
from tests.slurm.conftest import JobTracker

pytestmark = pytest.mark.slurm


@pytest.fixture
def routing_file(slurm_env: dict[str, str]) -> Iterator[Path]:
    path = Path(slurm_env.get("SLURMOPT_ROUTING_FILE") or os.environ["SLURMOPT_ROUTING_FILE"])
    yield path
    path.unlink(missing_ok=True)


def show(job_id: int) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", str(job_id)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    fields: dict[str, str] = {}
    for word in out.split():
        key, _, value = word.partition("=")
        fields.setdefault(key, value)
    return fields


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
    assert show(untyped)["Partition"] == "h100"
    assert "slurmopt:allowed=h100,a100" in show(untyped)["AdminComment"]
    assert show(typed)["Partition"] == "a100"
    assert show(cpu)["Partition"] == "cpu"
    assert show(tagged)["Partition"] == "h100"
    assert show(pinned)["Partition"] == "v100"
    assert show(pinned).get("AdminComment", "") in ("", "(null)")


@pytest.mark.parametrize(
    "content",
    ["garbage that is not a routing file\n", "format 1\nroute gpu h100\n", None, "stale"],
)
def test_jobs_are_accepted_when_the_advice_is_unusable(
    jobs: JobTracker, routing_file: Path, content: str | None
) -> None:
    if content is None:
        routing_file.unlink(missing_ok=True)
    elif content == "stale":
        advise(routing_file, {"gpu": ["h100"], "cpu": ["cpu"]}, age_s=3600)
    else:
        routing_file.write_text(content)
    cpu = jobs.submit("-H", "-p", "auto", "-t", "1", "--wrap", "sleep 1")
    gpu = jobs.submit("-H", "-p", "auto,a100", "--gpus=1", "-t", "1", "--wrap", "sleep 1")
    assert show(cpu)["Partition"] == "cpu"  # the default partition
    assert show(gpu)["Partition"] == "a100"  # the rest of the user's list


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
    assert show(job)["Partition"] == routes["gpu"][0]
    assert show(job)["AdminComment"].endswith(",".join(routes["gpu"]))
