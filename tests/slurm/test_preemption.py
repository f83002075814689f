"""Preemption on a live Slurm: a private testbed (no accounting) whose spec has a
partition with its own PreemptMode, so that ``scripts/testbed`` writes
``PreemptType=preempt/partition_prio`` and ``PreemptMode=REQUEUE``:

- ``owner`` (PriorityTier 2) and ``scavenger`` (PriorityTier 1, PreemptMode=REQUEUE)
  share the H100 node; ``a100`` has an A100 node of its own.

Checked: slurmopt reads scavenger (and only it) as preemptable; a job in scavenger
is really requeued when an owner job needs the node (the cost is real); optsub ranks
scavenger behind the slower a100 by ``preempt_penalty_s``; the controller does not
move a waiting job into scavenger for less gain than that penalty, and does with
the penalty at 0 (paired, same state).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slurmopt.controller.cycle import run_cycle
from slurmopt.optimize.problem import Problem
from slurmopt.slurm.backend import CliBackend
from tests.slurm.conftest import TESTBED, JobTracker, slurm_cmd, wait_for
from tests.slurm.test_controller import CFG, OPT, tag_allowed

SPEC = """
name = "slurmopt-preempt"
description = "preemption: owner and scavenger share one H100 node"
accounting = false

[[nodes]]
name = "pre-h1"
cpus = 8
memory_mb = 16000
gpus = 2
gpu_type = "h100"

[[nodes]]
name = "pre-a1"
cpus = 8
memory_mb = 16000
gpus = 2
gpu_type = "a100"

[[nodes]]
name = "pre-c1"
cpus = 8
memory_mb = 16000

[[partitions]]
name = "cpu"
nodes = ["pre-c1"]
default = true
max_time = "1-00:00:00"

[[partitions]]
name = "owner"
nodes = ["pre-h1"]
max_time = "12:00:00"
priority_tier = 2

[[partitions]]
name = "scavenger"
nodes = ["pre-h1"]
max_time = "12:00:00"
priority_tier = 1
preempt_mode = "REQUEUE"

[[partitions]]
name = "a100"
nodes = ["pre-a1"]
max_time = "12:00:00"

[gpu_speed]
h100 = 3.0
a100 = 2.0
"""


def run_testbed(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TESTBED), *args],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def preempt_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("a second testbed needs root")
    tmp = tmp_path_factory.mktemp("preempt")
    spec = tmp / "preempt.toml"
    spec.write_text(SPEC)
    root = tmp / "tb"
    env = dict(os.environ, SLURMOPT_TESTBED_DIR=str(root), SLURMOPT_TESTBED_SPEC=str(spec))
    env.pop("SLURMOPT_TESTBED_PORT_BASE", None)
    env["SLURM_CONF"] = str(root / "etc" / "slurm.conf")
    saved = {
        k: os.environ.get(k)
        for k in ("SLURMOPT_TESTBED_DIR", "SLURMOPT_TESTBED_SPEC", "SLURM_CONF")
    }
    try:
        up = run_testbed(env, "up", "--timeout", "180")
        assert up.returncode == 0, up.stdout + up.stderr
        for k in saved:
            os.environ[k] = env[k]
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        run_testbed(env, "down")


def state_of(job_id: int) -> str:
    return slurm_cmd(["squeue", "-h", "-j", str(job_id), "-o", "%T"]).stdout.strip()


def test_scavenger_is_preemptable_and_really_preempted(
    preempt_bed: dict[str, str], jobs: JobTracker
) -> None:
    conf = Path(preempt_bed["SLURM_CONF"]).read_text()
    assert "PreemptType=preempt/partition_prio" in conf
    snap = CliBackend(timeout=30).snapshot()
    assert snap.partition("scavenger").preempt_mode == "REQUEUE"
    prob = Problem.build(snap)
    assert {p.name for p, pre in zip(prob.partitions, prob.preemptable, strict=True) if pre} == {
        "scavenger"
    }
    # the cost is real: an owner job takes the node back, the scavenger job is requeued
    scav = jobs.submit("-p", "scavenger", "--gpus=2", "-t", "10", "-o", "/dev/null",
                       "--wrap", "sleep 300")  # fmt: skip
    wait_for(lambda: state_of(scav) == "RUNNING", timeout=60)
    owner = jobs.submit("-p", "owner", "--gpus=2", "-t", "1", "-o", "/dev/null",
                        "--wrap", "sleep 5")  # fmt: skip
    wait_for(lambda: state_of(owner) in ("RUNNING", "COMPLETING", ""), timeout=60)
    job = slurm_cmd(["scontrol", "-o", "show", "job", str(scav)]).stdout
    restarts = re.search(r"\bRestarts=(\d+)", job)
    assert restarts and int(restarts.group(1)) >= 1, job  # requeued by the preemption
    slurm_cmd(["scancel", str(scav), str(owner)])


def test_optsub_ranks_scavenger_behind_its_preemption_risk(
    preempt_bed: dict[str, str], tmp_path: Path
) -> None:
    env = dict(os.environ, SLURMOPT_STATE_CACHE=str(tmp_path / "none"),
               SLURMOPT_SPOOL_DIR=str(tmp_path))  # fmt: skip
    res = subprocess.run(
        [str(Path(sys.executable).parent / "optsub"), "--optsub-dry-run", "--optsub-json",
         "-p", "scavenger,a100", "--gpus=1", "-t", "10", "--wrap", "true"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    decision = json.loads(res.stdout)
    by = {c["partition"]: c for c in decision["candidates"]}
    # scavenger (H100) would finish first, but may be preempted: a100 is chosen
    assert by["scavenger"]["eligible"] and by["scavenger"]["penalty"] == OPT.preempt_penalty_s
    assert by["scavenger"]["end"] < by["a100"]["end"]
    assert by["a100"]["penalty"] == 0
    assert decision["partition"] == "a100", decision


def test_controller_weighs_the_preemption_risk(
    preempt_bed: dict[str, str], jobs: JobTracker, tmp_path: Path
) -> None:
    backend = CliBackend()
    # a100 busy for about 90 s; the waiting job could start at once in scavenger
    block = jobs.submit("-p", "a100", "--gpus=2", "-t", "2", "--mem=1000", "-o", "/dev/null",
                        "--wrap", "sleep 90")  # fmt: skip
    wait_for(lambda: state_of(block) == "RUNNING", timeout=60)
    wait = tag_allowed(
        jobs.submit(
            "-p",
            "a100",
            "--gpus=1",
            "-t",
            "2",
            "--mem=1000",
            "-o",
            "/dev/null",
            "--wrap",
            "sleep 2",
        ),
        "a100,scavenger",
    )
    time.sleep(2)

    def cycle(opt: object, tag: str) -> dict[int, str | None]:
        report = run_cycle(
            backend, dataclasses.replace(CFG, mode="enforce"), opt,  # type: ignore[arg-type]
            store=None, lock_path=tmp_path / f"lock-{tag}",
            cache_path=tmp_path / f"cache-{tag}.json", routing_path=tmp_path / f"r-{tag}.txt",
        )  # fmt: skip
        return {j.job_id: j.to_partition for j in report.jobs if j.outcome == "applied"}

    # the gain (about 90 s of waiting) is less than the 1800 s penalty: it stays
    assert wait not in cycle(OPT, "penalty")
    assert state_of(wait) == "PENDING"
    # the same state without the penalty: it moves to scavenger
    assert cycle(dataclasses.replace(OPT, preempt_penalty_s=0.0), "free").get(wait) == "scavenger"
