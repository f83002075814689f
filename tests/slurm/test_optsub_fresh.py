"""optsub's live refresh on the real testbed: a state cache that still shows the H100s busy
with jobs that have ended does not send a job to slower GPUs (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from slurmopt.controller.cycle import write_state_cache
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.backend import get_backend
from tests.slurm.conftest import JobTracker, wait_for

OPTSUB = [sys.executable, "-c", "from slurmopt.cli.optsub import main; main()"]


def _running(job_ids: list[int]) -> bool:
    out = subprocess.run(
        ["squeue", "-h", "-j", ",".join(map(str, job_ids)), "-o", "%T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.split()
    return out.count("RUNNING") == len(job_ids)


def _gone(job_ids: list[int]) -> bool:
    out = subprocess.run(
        ["squeue", "-h", "-j", ",".join(map(str, job_ids)), "-o", "%T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.split()
    return not [s for s in out if s in ("RUNNING", "PENDING", "COMPLETING", "CONFIGURING")]


def _dry_run(tmp_path: Path, cache: Path, refresh: bool) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / f"optsub-{refresh}.toml"
    conf.write_text(f"[optsub]\nlive_refresh = {'true' if refresh else 'false'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURMOPT_"))}
    env |= {
        "SLURMOPT_STATE_CACHE": str(cache),
        "SLURMOPT_SPOOL_DIR": str(tmp_path),
        "SLURMOPT_CONFIG": str(conf),
    }
    return subprocess.run(
        [
            *OPTSUB,
            "--optsub-dry-run",
            "--optsub-json",
            "-p",
            "a100,h100",
            "--gpus-per-node=1",
            "-t",
            "30",
            "--wrap",
            "true",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_h100_jobs_that_ended_since_the_cache_do_not_count(
    tmp_path: Path, jobs: JobTracker
) -> None:
    import json

    fill = [
        jobs.submit(
            "-p",
            "h100",
            "-N1",
            "--gres=gpu:h100:8",
            "-t",
            "30",
            "--mem=1G",
            "-o",
            "/dev/null",
            "--wrap",
            "sleep 600",
        )
        for _ in range(2)
    ]
    assert wait_for(lambda: _running(fill), timeout=60)
    cache = tmp_path / "cache.json"
    write_state_cache(get_backend().snapshot(), OptimizeConfig(), cache, {})
    subprocess.run(["scancel", *map(str, fill)], timeout=30, check=True)
    assert wait_for(lambda: _gone(fill), timeout=60)

    stale = _dry_run(tmp_path, cache, refresh=False)
    assert stale.returncode == 0, stale.stderr
    assert json.loads(stale.stdout)["partition"] == "a100"  # the cache alone: H100s busy

    fresh = _dry_run(tmp_path, cache, refresh=True)
    assert fresh.returncode == 0, fresh.stderr
    doc = json.loads(fresh.stdout)
    assert doc["partition"] == "h100", doc
    assert "live: 2 ended" in doc["state_source"], doc["state_source"]
