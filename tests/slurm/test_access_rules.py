"""Partition access rules on the live accounting testbed: a QOS-restricted partition
(t4: AllowQos=high), an account-restricted one (h100: AllowAccounts=ml) and a
reservation holding every a100 node. The one eligibility rule
(``slurmopt.optimize.eligibility``) must agree with slurmctld: `plan` says why not,
optsub never submits where the job would be rejected, the controller never moves
a job where it would pend.

The restrictions are set with ``scontrol update`` / ``scontrol create reservation``
for this module and undone after it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slurmopt.clusterspec import ClusterSpec
from slurmopt.optimize.problem import Problem
from slurmopt.slurm.backend import CliBackend
from slurmopt.slurm.versions import SlurmVersion
from tests.slurm.conftest import JobTracker, slurm_cmd, wait_for
from tests.slurm.test_controller import CFG, by_id, cycle, fill_v100, tag_allowed

RESV = f"slurmopt_test_{os.getpid()}"
ALL4 = "t4,v100,a100,h100"


def _scontrol(*args: str) -> None:
    res = slurm_cmd(["scontrol", *args])
    assert res.returncode == 0, f"scontrol {' '.join(args)}: {res.stderr.strip()}"


@pytest.fixture(scope="module")
def restricted(slurm_env: dict[str, str]) -> Iterator[None]:
    spec_accounts = slurm_cmd(["sacctmgr", "-n", "-P", "show", "account", "format=account"])
    accounts = set(spec_accounts.stdout.split())
    if spec_accounts.returncode != 0 or not {"ml", "research"} <= accounts:
        pytest.skip("needs the accounting testbed with accounts ml and research")
    nodes = slurm_cmd(["scontrol", "-o", "show", "partition", "a100"]).stdout
    a100_nodes = next(w for w in nodes.split() if w.startswith("Nodes=")).split("=", 1)[1]
    _scontrol("update", "PartitionName=t4", "AllowQos=high")
    _scontrol("update", "PartitionName=h100", "AllowAccounts=ml")
    try:
        _scontrol(
            *("create", "reservation", f"ReservationName={RESV}", f"Nodes={a100_nodes}"),
            *("Users=root", "StartTime=now", "Duration=30", "Flags=IGNORE_JOBS"),
        )
        yield
    finally:
        slurm_cmd(["scontrol", "delete", f"ReservationName={RESV}"])
        slurm_cmd(["scontrol", "update", "PartitionName=t4", "AllowQos=ALL"])
        slurm_cmd(["scontrol", "update", "PartitionName=h100", "AllowAccounts=ALL"])


def pending_probe(jobs: JobTracker, *extra: str) -> int:
    return jobs.submit(
        *("--begin=now+3600", "-p", ALL4, "--gpus=1", "-t", "5", "-o", "/dev/null"),
        *extra,
        *("--wrap", "true"),
    )


def test_plan_eligibility_agrees_with_slurmctld(restricted: None, jobs: JobTracker) -> None:
    job_id = pending_probe(jobs, "-A", "research")
    snap = CliBackend(timeout=30).snapshot()
    assert any(r.name == RESV for r in snap.reservations)
    assert snap.partition("t4").allow_qos == ("high",)
    why = Problem.build(snap).reasons[job_id]
    assert why["t4"] == "QOS normal not in AllowQos=high"
    assert why["h100"] == "account research not in AllowAccounts=ml"
    assert f"in reservation {RESV}, which the job is not in" in why["a100"]
    assert "v100" not in why  # the one eligible partition
    # `slurmopt plan` prints the same reasons
    out = subprocess.run(
        [sys.executable, "-m", "slurmopt", "plan", "--json", "--policy", "earliest-start"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "account research not in AllowAccounts=ml" in out.stdout
    # slurmctld agrees: every version takes the move, and the job pends on the rule
    _scontrol("update", f"JobId={job_id}", "Partition=t4", "StartTime=now")
    wait_reason(job_id, ("QOS not permitted",))
    _scontrol("update", f"JobId={job_id}", "Partition=h100", "StartTime=now")
    moved = time.monotonic()
    # h100 can start a job now: one under account ml starts there ...
    control = jobs.submit(
        *("-A", "ml", "-p", "h100", "--gpus=1", "-t", "1", "-o", "/dev/null", "--wrap", "true")
    )
    wait_for(
        lambda: (
            slurm_cmd(["squeue", "-h", "-j", str(control), "-o", "%T"]).stdout.strip()
            not in ("PENDING", "CONFIGURING")
        ),
        timeout=60,
    )
    time.sleep(max(0.0, SCHED_CYCLES_S - (time.monotonic() - moved)))
    # ... while the research job stays pending. 22.05 says why (its scheduler checks
    # AllowAccounts on every pass and words it); 24.11 and 25.11 check AllowAccounts in
    # _part_access_check only under EnforcePartLimits (NO here, Slurm's default), so the
    # moved job keeps reason None while backfill re-evaluates it every pass and never
    # starts it (docs/slurm-versions.md): the real behaviour on each version
    if CliBackend(timeout=30).version() < SlurmVersion(23, 2):
        wait_reason(job_id, ("account not permitted",))
    state, reason = squeue_state(job_id)
    assert state == "PENDING", (state, reason)
    assert reason in ("None", "PartitionConfig") or "account not permitted" in reason, reason
    _scontrol("update", f"JobId={job_id}", "Partition=v100", "StartTime=now+3600")


SCHED_CYCLES_S = 12.0
"""Two main scheduling passes of the testbed (sched_interval=5) and many backfill ones."""


def squeue_state(job_id: int) -> tuple[str, str]:
    """The job's state and reason (``%T|%r``)."""
    out = slurm_cmd(["squeue", "-h", "-j", str(job_id), "-o", "%T|%r"]).stdout.strip()
    state, _, reason = out.partition("|")
    return state, reason


def wait_reason(job_id: int, wanted: tuple[str, ...], timeout: float = 30) -> str:
    """Wait until squeue's reason for the job contains one of ``wanted``; say what it showed."""
    seen: list[str] = []

    def reason() -> str:
        seen.append(squeue_state(job_id)[1])
        return seen[-1] if any(w in seen[-1] for w in wanted) else ""

    try:
        return wait_for(reason, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"expected one of {wanted}, squeue %r said {seen[-3:]}") from None


def optsub(*args: str, tmp: Path) -> dict[str, object]:
    env = dict(os.environ, SLURMOPT_STATE_CACHE=str(tmp / "none"), SLURMOPT_SPOOL_DIR=str(tmp))
    res = subprocess.run(
        [str(Path(sys.executable).parent / "optsub"), "--optsub-dry-run", "--optsub-json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    decision: dict[str, object] = json.loads(res.stdout)
    return decision


def test_optsub_places_only_where_the_job_is_accepted(
    restricted: None, tmp_path: Path, cluster_spec: ClusterSpec
) -> None:
    common = ("-p", ALL4, "--gpus=1", "-t", "5", "--wrap", "true")
    research = optsub("-A", "research", *common, tmp=tmp_path)
    assert research["partition"] == "v100"
    reasons = {c["partition"]: c["reason"] for c in research["candidates"]}  # type: ignore[attr-defined]
    assert reasons["t4"] and reasons["h100"] and reasons["a100"]
    # the same job under account ml and QOS high may use h100 (the fastest idle one)
    ml = optsub("-A", "ml", "-q", "high", *common, tmp=tmp_path)
    assert ml["partition"] == "h100"
    # no -A: Slurm would take root's default account; h100 restricts accounts, so not there
    unknown = optsub(*common, tmp=tmp_path)
    assert unknown["partition"] not in ("h100", "t4", "a100")


def test_controller_never_moves_a_job_where_it_would_pend(
    restricted: None, jobs: JobTracker, tmp_path: Path, wait_for: Callable[..., object]
) -> None:
    backend = CliBackend()
    # v100 full first (fair share ranks accounts differently: wait for the blockers to run)
    blockers = fill_v100(jobs, "acl")
    wait_for(lambda: all(j.running for j in by_id(backend, blockers).values()), timeout=60)
    one = ("--gpus-per-node=1", "-t", "1", "--mem=1000", "-o", "/dev/null", "--wrap", "sleep 2")
    stay = [tag_allowed(jobs.submit("-A", "research", "-p", "v100", *one), ALL4) for _ in range(2)]
    move = tag_allowed(jobs.submit("-A", "ml", "-p", "v100", *one), ALL4)
    report = cycle(tmp_path, backend, dataclasses.replace(CFG, mode="enforce"))
    moved = {j.job_id: j.to_partition for j in report.jobs if j.outcome == "applied"}
    # research's jobs: t4 (QOS), h100 (account) and a100 (reservation) refuse them
    assert not set(stay) & set(moved), report.to_dict()
    assert moved.get(move) == "h100", report.to_dict()
    now = by_id(backend, [*stay, move])
    assert all(now[i].partitions == ("v100",) for i in stay if i in now)
    assert all((now[i].reason or "") not in ("QOSNotAllowed", "AccountNotAllowed") for i in now)


@pytest.fixture
def t4_qos(restricted: None) -> Iterator[str]:
    """t4 gets a partition QOS: MaxWall 10 min, 2 GPUs per user (jobs need -q high there)."""
    name = "slurmopt_gpulim"
    res = slurm_cmd(
        ["sacctmgr", "-i", "add", "qos", name, "MaxWall=00:10:00", "MaxTRESPerUser=gres/gpu=2"]
    )
    assert res.returncode == 0 or "Nothing new" in res.stdout + res.stderr, res.stderr
    _scontrol("update", "PartitionName=t4", f"QOS={name}")
    try:
        yield name
    finally:
        slurm_cmd(["scontrol", "update", "PartitionName=t4", "QOS="])
        slurm_cmd(["sacctmgr", "-i", "delete", "qos", name])


def test_partition_qos_limits_agree_with_slurmctld(t4_qos: str, jobs: JobTracker) -> None:
    args = ("-A", "research", "-q", "high", "-p", "t4,v100", "--begin=now+3600", "-o", "/dev/null")
    long = jobs.submit(*args, "--gpus=1", "-t", "30", "--wrap", "true")
    wide = jobs.submit(*args, "--gpus=4", "-t", "5", "--wrap", "true")
    fits = jobs.submit(*args, "--gpus=1", "-t", "5", "--wrap", "true")
    snap = CliBackend(timeout=30).snapshot()
    assert any(q.name == t4_qos and q.max_wall_s == 600 for q in snap.qos)
    why = Problem.build(snap).reasons
    assert f"exceeds MaxWall 00:10:00 of partition QOS {t4_qos}" in why[long]["t4"]
    assert f"exceed MaxTRESPerUser gres/gpu=2 of partition QOS {t4_qos}" in why[wide]["t4"]
    assert "t4" not in why.get(fits, {})
    # slurmctld: in t4 alone, the long job pends on the QOS's wall limit
    _scontrol("update", f"JobId={long}", "Partition=t4", "StartTime=now")

    def pends_on_qos() -> str:
        res = slurm_cmd(["squeue", "-h", "-j", str(long), "-o", "%r"])
        return res.stdout.strip() if "QOSMaxWall" in res.stdout else ""

    wait_for(pends_on_qos, timeout=30)
