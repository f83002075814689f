"""The testbed's accounting (slurmdbd + MariaDB), for real: associations are enforced,
``scripts/testbed add-user`` lets a new unix user submit, and ``sacct`` keeps a
finished job with its final state, times and GPU TRES."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from slurmopt.clusterspec import ClusterSpec
from tests.slurm.conftest import JobTracker, parse_job_id, register_user, slurm_cmd, wait_for


def accounting_on() -> bool:
    res = slurm_cmd(["scontrol", "show", "config"])
    return "accounting_storage/slurmdbd" in res.stdout


@pytest.fixture
def unix_user() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("useradd needs root")
    name = f"sotacct{os.getpid() % 100000}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        slurm_cmd(["scancel", "-u", name])
        slurm_cmd(["sacctmgr", "-i", "delete", "user", name])
        subprocess.run(["userdel", name], check=False, capture_output=True)


def sbatch_as(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *("runuser", "-u", user, "--", "env", f"SLURM_CONF={os.environ['SLURM_CONF']}"),
            *("sbatch", "--parsable", "-o", "/dev/null", *args),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd="/tmp",
    )


def test_new_user_needs_add_user_then_submits(
    unix_user: str, cluster_spec: ClusterSpec, jobs: JobTracker
) -> None:
    if not accounting_on():
        pytest.skip("testbed runs without accounting")
    before = sbatch_as(unix_user, "-t", "1", "--begin=now+600", "--wrap", "true")
    assert before.returncode != 0 and "Invalid account" in before.stderr
    assert register_user(unix_user) == [cluster_spec.default_account]
    after = sbatch_as(unix_user, "-t", "1", "--begin=now+600", "--wrap", "true")
    assert after.returncode == 0, after.stderr
    job_id = jobs.track(parse_job_id(after.stdout))
    res = slurm_cmd(["squeue", "-h", "-j", str(job_id), "-o", "%u %a %q"])
    assert res.stdout.split() == [unix_user, cluster_spec.default_account, "normal"]
    # a second account on request, idempotently
    other = next((a.name for a in cluster_spec.accounts if a.default is False), None)
    if other:
        assert other in register_user(unix_user, other)
        assert other in register_user(unix_user, other)


def test_sacct_keeps_final_state_times_and_gpus(
    cluster_spec: ClusterSpec, jobs: JobTracker
) -> None:
    if not accounting_on():
        pytest.skip("testbed runs without accounting")
    part = next(
        p for p in cluster_spec.partitions if any(cluster_spec.node(n).gpus for n in p.nodes)
    )
    job_id = jobs.submit(
        "-p", part.name, "--gpus=1", "-t", "1", "-o", "/dev/null", "--wrap", "sleep 1"
    )

    def finished() -> list[str]:
        res = slurm_cmd(
            ["sacct", "-X", "-n", "-P", "-j", str(job_id), "-o", "State,Start,End,AllocTRES"]
        )
        fields = res.stdout.strip().split("|")
        return fields if len(fields) == 4 and fields[0] == "COMPLETED" else []

    _state, start, end, tres = wait_for(finished, timeout=60)
    assert start < end  # ISO times compare as text
    assert "gres/gpu=1" in tres.split(",")
