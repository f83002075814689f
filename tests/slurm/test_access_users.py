"""Access rules that depend on who submits, on the live accounting testbed: the user's
default account and QOS (a job without ``-A`` / ``-q`` gets them from accounting),
AllowGroups through a supplementary group, and the job's own QOS limits.

Real unix users (``useradd``, associations through ``scripts/testbed add-user``):
``soaccess`` (primary group ``users``, supplementary group ``sogpu``; accounts ml
(default) and research; default QOS high) and ``sonogrp`` (group ``users`` only;
default account research, default QOS normal). Partition rules for this module:
h100 AllowAccounts=ml, t4 AllowQos=high, a100 AllowGroups=sogpu. A QOS ``solim``
(MaxWall 10 min, MaxTRESPerUser gres/gpu=2, MaxTRESPerJob gres/gpu=4) that root may use
(root's QOS jobs run under account ml: h100 allows only ml).
Everything is undone afterwards (the users stay, as test_security's do).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slurmopt.optimize.problem import Problem
from slurmopt.slurm.backend import CliBackend
from tests.slurm.conftest import JobTracker, register_user, slurm_cmd, unavailable, wait_for
from tests.slurm.test_access_rules import SCHED_CYCLES_S, optsub, squeue_state, wait_reason
from tests.slurm.test_controller import CFG, by_id, cycle, fill_v100, tag_allowed
from tests.slurm.test_security import as_user, optsub_as

MEMBER, OUTSIDER, GROUP, QOS = "soaccess", "sonogrp", "sogpu", "solim"
ALL4 = "t4,v100,a100,h100"
GPU1 = ("--gpus=1", "-t", "5", "-o", "/dev/null")


def _scontrol(*args: str) -> None:
    res = slurm_cmd(["scontrol", *args])
    assert res.returncode == 0, f"scontrol {' '.join(args)}: {res.stderr.strip()}"


def _sacctmgr(*args: str) -> None:
    res = slurm_cmd(["sacctmgr", "-i", *args])
    out = res.stdout + res.stderr
    assert res.returncode == 0 or "Nothing new" in out or "Nothing modified" in out, out


@pytest.fixture(scope="module")
def people(slurm_env: dict[str, str]) -> Iterator[None]:
    """The two users, the group, the partition rules and the QOS (module docstring)."""
    if os.geteuid() != 0 or not all(map(shutil.which, ("useradd", "groupadd", "runuser"))):
        unavailable("needs root, useradd, groupadd and runuser")
    have = slurm_cmd(["sacctmgr", "-n", "-P", "show", "account", "format=account"]).stdout.split()
    if not {"ml", "research"} <= set(have):
        pytest.skip("needs the accounting testbed with accounts ml and research")
    subprocess.run(["groupadd", "-f", GROUP], check=True, timeout=60)
    for name in (MEMBER, OUTSIDER):
        if subprocess.run(["id", name], capture_output=True, check=False).returncode != 0:
            subprocess.run(
                ["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name], check=True, timeout=60
            )
    subprocess.run(["usermod", "-a", "-G", GROUP, MEMBER], check=True, timeout=60)
    subprocess.run(["gpasswd", "-d", OUTSIDER, GROUP], capture_output=True, check=False)
    # a fresh association each run: the first account is the default one
    for name in (MEMBER, OUTSIDER):
        slurm_cmd(["sacctmgr", "-i", "delete", "user", name])
    assert "ml" in register_user(MEMBER, "ml", "research")
    assert "research" in register_user(OUTSIDER, "research")
    _sacctmgr("modify", "user", "where", f"name={MEMBER}", "set", "DefaultQOS=high")
    _sacctmgr("add", "qos", QOS)
    _sacctmgr(
        *("modify", "qos", "where", f"name={QOS}", "set", "MaxWall=00:10:00"),
        *("MaxTRESPerUser=gres/gpu=2", "MaxTRES=gres/gpu=4"),
    )
    _sacctmgr("modify", "user", "where", "name=root", "set", f"QOS+={QOS}")
    _scontrol("update", "PartitionName=h100", "AllowAccounts=ml")
    _scontrol("update", "PartitionName=t4", "AllowQos=high")
    _scontrol("update", "PartitionName=a100", f"AllowGroups={GROUP}")
    try:
        yield
    finally:
        slurm_cmd(["scancel", "-u", MEMBER])
        slurm_cmd(["scancel", "-u", OUTSIDER])
        slurm_cmd(["scontrol", "update", "PartitionName=h100", "AllowAccounts=ALL"])
        slurm_cmd(["scontrol", "update", "PartitionName=t4", "AllowQos=ALL"])
        slurm_cmd(["scontrol", "update", "PartitionName=a100", "AllowGroups=ALL"])
        slurm_cmd(["sacctmgr", "-i", "modify", "user", "where", "name=root", "set", f"QOS-={QOS}"])
        slurm_cmd(["sacctmgr", "-i", "delete", "qos", QOS])


def decide_as(user: str, *args: str) -> dict[str, Any]:
    """optsub's dry-run decision for ``user`` (live snapshot: no state cache)."""
    env = {"SLURMOPT_STATE_CACHE": "/nonexistent", "SLURMOPT_SPOOL_DIR": "/nonexistent"}
    ((code, out, err),) = optsub_as(user, [["--optsub-dry-run", "--optsub-json", *args]], env)
    assert code == 0, err
    decision: dict[str, Any] = json.loads(out)
    return decision


def reasons(decision: dict[str, Any]) -> dict[str, str | None]:
    return {c["partition"]: c["reason"] for c in decision["candidates"]}


def submit_as(user: str, jobs: JobTracker, *args: str) -> int:
    res = as_user(user, ["sbatch", "--parsable", *args])
    assert res.returncode == 0, res.stderr
    return jobs.track(int(res.stdout.strip().split(";")[0]))


def test_defaults_from_accounting_decide_where_optsub_places(
    people: None, jobs: JobTracker, tmp_path: Path
) -> None:
    # MEMBER states neither -A nor -q: Slurm takes account ml and QOS high, which h100
    # (AllowAccounts=ml) and t4 (AllowQos=high) allow: the fastest, h100, is chosen
    member = decide_as(MEMBER, "-p", ALL4, *GPU1, "--wrap", "true")
    assert member["partition"] == "h100", member
    why = reasons(member)
    assert not why["h100"] and not why["t4"], why  # eligible: no reason
    # OUTSIDER's defaults are research and normal: neither h100 nor t4 (nor a100: groups)
    outsider = decide_as(OUTSIDER, "-p", ALL4, *GPU1, "--wrap", "true")
    assert outsider["partition"] == "v100", outsider
    why = reasons(outsider)
    assert why["h100"] == (
        "account research not in AllowAccounts=ml (the user's default account)"
    ), why
    assert why["t4"] == (
        "QOS normal not in AllowQos=high (the default QOS of the job's association)"
    ), why
    # root, in-process: its default account is root
    root = optsub("-p", ALL4, "--gpus=1", "-t", "5", "--wrap", "true", tmp=tmp_path)
    assert "(the user's default account)" in str(reasons(root)["h100"])
    # slurmctld uses the same defaults: MEMBER's plain job runs under ml / high
    job = submit_as(MEMBER, jobs, "-p", "h100", *GPU1, "--begin=now+3600", "--wrap", "true")
    out = slurm_cmd(["squeue", "-h", "-j", str(job), "-o", "%a|%q"]).stdout.strip()
    assert out == "ml|high", out


def test_allow_groups_counts_supplementary_groups(people: None, jobs: JobTracker) -> None:
    # a100 (AllowGroups=sogpu) is faster than v100: MEMBER is in sogpu through a
    # supplementary group only (primary: users), OUTSIDER is not in it
    member = decide_as(MEMBER, "-p", "a100,v100", *GPU1, "--wrap", "true")
    assert member["partition"] == "a100", member
    outsider = decide_as(OUTSIDER, "-p", "a100,v100", *GPU1, "--wrap", "true")
    assert outsider["partition"] == "v100", outsider
    assert reasons(outsider)["a100"] == "group users not in AllowGroups=sogpu"
    # slurmctld agrees: MEMBER's job starts in a100; OUTSIDER's is refused (22.05 rejects
    # it at submission) or, where accepted, never starts
    run = ("-p", "a100", "--gpus=1", "-t", "1", "-o", "/dev/null", "--wrap", "sleep 3")
    ok = submit_as(MEMBER, jobs, *run)
    res = as_user(OUTSIDER, ["sbatch", "--parsable", *run])
    submitted = time.monotonic()
    wait_for(lambda: squeue_state(ok)[0] not in ("PENDING", "CONFIGURING"), timeout=60)
    if res.returncode != 0:
        assert "group not permitted to use this partition" in res.stderr, res.stderr
        return
    refused = jobs.track(int(res.stdout.strip().split(";")[0]))
    time.sleep(max(0.0, SCHED_CYCLES_S - (time.monotonic() - submitted)))
    state, reason = squeue_state(refused)
    assert state == "PENDING", (state, reason)


def test_job_qos_limits_agree_with_slurmctld(
    people: None, jobs: JobTracker, tmp_path: Path
) -> None:
    args = ("-A", "ml", "-q", QOS, "-p", "v100,h100", "--begin=now+3600", "-o", "/dev/null")
    long = jobs.submit(*args, "--gpus=1", "-t", "30", "--wrap", "true")
    wide = jobs.submit(*args, "--gpus=8", "-t", "5", "--wrap", "true")
    fits = jobs.submit(*args, "--gpus=1", "-t", "5", "--wrap", "true")
    snap = CliBackend(timeout=30).snapshot()
    assert any(q.name == QOS and q.max_gpus_per_job == 4 for q in snap.qos)
    why = Problem.build(snap).reasons
    wall = f"time limit 00:30:00 exceeds MaxWall 00:10:00 of the job's QOS {QOS}"
    assert why[long] == {"v100": wall, "h100": wall}
    assert why[wide]["h100"] == f"8 GPU(s) exceed MaxTRESPerJob gres/gpu=4 of the job's QOS {QOS}"
    assert fits not in why
    # `slurmopt plan` says the same
    out = subprocess.run(
        [sys.executable, "-m", "slurmopt", "plan", "--json", "--policy", "earliest-start"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert wall in out.stdout
    # optsub: no partition can run the long one, so it goes as written; the short one is placed
    qargs = ("-A", "ml", "-q", QOS, "-p", "v100,h100", "--gpus=1", "--wrap", "true")
    passed = optsub(*qargs, "-t", "30", tmp=tmp_path)
    assert passed["action"] == "passthrough", passed
    assert reasons(passed) == {"v100": wall, "h100": wall}, passed
    placed = optsub(*qargs, "-t", "5", tmp=tmp_path)
    assert placed["partition"] == "h100", placed
    # slurmctld: the long job pends on the QOS's wall limit
    _scontrol("update", f"JobId={long}", "StartTime=now")
    wait_reason(long, ("QOSMaxWall",))


def test_controller_never_moves_a_job_held_back_by_its_qos(
    people: None, jobs: JobTracker, tmp_path: Path, wait_for: Callable[..., object]
) -> None:
    backend = CliBackend()
    blockers = fill_v100(jobs, "qoslim", sleep_s=40)
    # root holds MaxTRESPerUser's 2 GPUs under solim (in h100, which has room left)
    held = [
        jobs.submit("-A", "ml", "-q", QOS, "-p", "h100", "--gpus=1", "-t", "1", "-o", "/dev/null",
                    "--wrap", "sleep 40")
        for _ in range(2)
    ]  # fmt: skip
    wait_for(lambda: all(j.running for j in by_id(backend, blockers + held).values()), timeout=60)
    one = ("--gpus-per-node=1", "-t", "1", "--mem=1000", "-o", "/dev/null", "--wrap", "sleep 2")
    stay = tag_allowed(jobs.submit("-A", "ml", "-q", QOS, "-p", "v100", *one), "v100,h100")
    move = tag_allowed(jobs.submit("-A", "ml", "-p", "v100", *one), "v100,h100")
    report = cycle(tmp_path, backend, dataclasses.replace(CFG, mode="enforce"))
    moved = {j.job_id: j.to_partition for j in report.jobs if j.outcome == "applied"}
    assert stay not in moved, report.to_dict()
    assert moved.get(move) == "h100", report.to_dict()
    # `plan` / eligibility: the QOS keeps it pending in either partition
    why = Problem.build(backend.snapshot(), allowed={stay: ("v100", "h100")}).reasons[stay]
    held_back = f"1 GPU(s) + 2 held by root exceed MaxTRESPerUser gres/gpu=2 of the job's QOS {QOS}"
    assert why == {"v100": held_back, "h100": held_back}, why
