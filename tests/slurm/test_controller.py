"""The controller against the real testbed: real jobs, short sleeps.

Workload: the v100 partition is filled by two blockers (4 GPUs each, 1 min
limit); three managed 1-GPU jobs wait behind them on v100, allowed on v100 and
h100 (recorded in admin_comment as the Lua plugin does); h100 (3x faster) is
idle. Slurm 22.05 cannot retype a pending job, so the managed jobs ask for an
untyped GPU (``--gpus-per-node=1``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slurmopt.controller.config import ControllerConfig
from slurmopt.controller.cycle import ALLOWED_TAG, CycleReport, run_cycle
from slurmopt.controller.lock import AlreadyRunning, CycleLock
from slurmopt.model import Job
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.backend import CliBackend
from tests.slurm.conftest import JobTracker

pytestmark = pytest.mark.slurm

CFG = ControllerConfig(
    mode="enforce", budget_s=0.5, min_gain_s=20, min_gain_ratio=0.05, imminent_s=5
)

OPT = OptimizeConfig(move_penalty_s=5)
"""Jobs here last a minute: the default 300 s hysteresis would keep them all in place."""


ONE_GPU_JOB = ("--gpus-per-node=1", "-t", "1", "--mem=1000", "--wrap", "sleep 2")
"""A one-GPU, one-minute-limit job (untyped: Slurm 22.05 cannot retype a pending job)."""


def fill_v100(jobs: JobTracker, tag: str, sleep_s: int = 25) -> list[int]:
    """Two 4-GPU blockers: the v100 partition is full for ``sleep_s`` (limit 1 min)."""
    argv = [
        "-p",
        "v100",
        "--gres=gpu:v100:4",
        "-t",
        "1",
        "--mem=1000",
        "--wrap",
        f"sleep {sleep_s}",
    ]
    return [jobs.submit("-J", f"{tag}-block", *argv) for _ in range(2)]


def workload(jobs: JobTracker, tag: str, sleep_s: int = 25) -> tuple[list[int], list[int]]:
    blockers = fill_v100(jobs, tag, sleep_s)
    managed = [
        tag_allowed(jobs.submit("-J", f"{tag}-m{i}", "-p", "v100", *ONE_GPU_JOB)) for i in range(3)
    ]
    return blockers, managed


def tag_allowed(job_id: int, allowed: str = "v100,h100") -> int:
    """Record the allowed set as the Lua plugin does (sbatch 22.05 has no --admin-comment)."""
    subprocess.run(
        ["scontrol", "update", f"JobId={job_id}", f"AdminComment={ALLOWED_TAG}{allowed}"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return job_id


def by_id(backend: CliBackend, ids: list[int]) -> dict[int, Job]:
    return {j.job_id: j for j in backend.snapshot().jobs if j.job_id in ids}


def cycle(tmp_path: Path, backend: Any, cfg: ControllerConfig = CFG) -> CycleReport:
    return run_cycle(
        backend,
        cfg,
        OPT,
        store=None,
        lock_path=tmp_path / "lock",
        cache_path=tmp_path / "cache.json",
        routing_path=tmp_path / "routing.txt",
    )


def start_times(ids: list[int]) -> dict[int, int]:
    """Slurm's own StartTime of each job (as epoch seconds)."""
    out = {}
    for jid in ids:
        res = subprocess.run(
            ["scontrol", "-o", "show", "job", str(jid)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        field = next(w for w in res.stdout.split() if w.startswith("StartTime="))
        out[jid] = int(time.mktime(time.strptime(field.split("=", 1)[1], "%Y-%m-%dT%H:%M:%S")))
    return out


def all_started(backend: CliBackend, ids: list[int]) -> bool:
    jobs = by_id(backend, ids)
    return all(j.job_id not in jobs or not j.pending for j in jobs.values()) and all(
        not jobs[i].pending for i in ids if i in jobs
    )


def test_enforce_starts_managed_jobs_earlier_than_observe(
    jobs: JobTracker, tmp_path: Path, wait_for: Callable[..., object]
) -> None:
    backend = CliBackend()
    # observe: nothing changes, the jobs wait for the blockers
    blockers, managed = workload(jobs, "obs")
    wait_for(lambda: all(j.running for j in by_id(backend, blockers).values()), timeout=30)
    submitted = time.time()
    report = cycle(tmp_path, backend, dataclasses.replace(CFG, mode="observe"))
    assert report.managed >= 3 and report.applied == 0
    assert {j.job_id for j in report.jobs if j.accepted} >= set(managed)
    assert all(by_id(backend, managed)[i].partitions == ("v100",) for i in managed)
    wait_for(lambda: all_started(backend, managed), timeout=120, interval=1)
    observe_wait = max(start_times(managed).values()) - submitted
    jobs.cleanup()

    # enforce: the same workload, moved to the idle h100 partition
    jobs2 = JobTracker()
    try:
        blockers, managed = workload(jobs2, "enf")
        wait_for(lambda: all(j.running for j in by_id(backend, blockers).values()), timeout=30)
        submitted = time.time()
        report = cycle(tmp_path, backend)
        applied = {j.job_id for j in report.jobs if j.outcome == "applied"}
        assert applied == set(managed), report.to_dict()
        assert all(j.to_partition == "h100" for j in report.jobs if j.job_id in applied)
        wait_for(lambda: all_started(backend, managed), timeout=60, interval=1)
        enforce_wait = max(start_times(managed).values()) - submitted
        # nothing was moved outside the allowed set; the blockers were never touched
        final = by_id(backend, managed + blockers)
        assert all(final[i].partitions == ("h100",) for i in managed if i in final)
        assert all(final[b].partitions == ("v100",) for b in blockers if b in final)
    finally:
        jobs2.cleanup()
    assert enforce_wait + 10 < observe_wait, (enforce_wait, observe_wait)


def test_unmanaged_and_held_jobs_are_never_touched(jobs: JobTracker, tmp_path: Path) -> None:
    backend = CliBackend()
    workload(jobs, "um")
    plain = jobs.submit(
        "-J",
        "um-plain",
        "-p",
        "v100,h100",
        *ONE_GPU_JOB,
    )
    held = jobs.submit(
        "-H",
        "-J",
        "um-held",
        "-p",
        "v100",
        *ONE_GPU_JOB,
    )
    tag_allowed(held)
    report = cycle(tmp_path, backend)
    touched = {j.job_id for j in report.jobs}
    assert plain not in touched and held not in touched
    after = by_id(backend, [plain, held])
    assert after[held].held and after[held].partitions == ("v100",)
    assert set(after[plain].partitions) == {"v100", "h100"} or not after[plain].pending


def test_observe_advise_and_kill_switch_change_nothing(jobs: JobTracker, tmp_path: Path) -> None:
    backend = CliBackend()
    _, managed = workload(jobs, "ks")
    stop = tmp_path / "STOP"
    stop.touch()
    for cfg in (
        dataclasses.replace(CFG, mode="observe"),
        dataclasses.replace(CFG, mode="advise"),
        dataclasses.replace(CFG, kill_switch=str(stop)),
    ):
        report = cycle(tmp_path, backend, cfg)
        assert report.applied == 0
        now = by_id(backend, managed)
        assert all(now[i].partitions == ("v100",) for i in managed)


def test_a_second_controller_during_a_cycle_does_nothing(jobs: JobTracker, tmp_path: Path) -> None:
    backend = CliBackend()
    _, managed = workload(jobs, "lock")
    with CycleLock(tmp_path / "lock"), pytest.raises(AlreadyRunning):
        cycle(tmp_path, backend)
    assert all(j.partitions == ("v100",) for j in by_id(backend, managed).values())


def test_slurmctld_lost_mid_cycle_then_next_cycle_succeeds(
    jobs: JobTracker, tmp_path: Path, ctld_stopped: Any
) -> None:
    real = CliBackend()
    _, managed = workload(jobs, "lost", sleep_s=55)  # outlasts a restart with accounting

    class StopsBeforeFirstMove:
        """The real backend; slurmctld is stopped right before the first change."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def move(self, *args: Any, **kw: Any) -> Any:
            if not ctld_stopped.stopped:
                ctld_stopped.__enter__()
            return real.move(*args, **kw)

    report = cycle(tmp_path, StopsBeforeFirstMove())
    assert report.applied == 0
    assert report.error and "stopped answering" in report.error
    assert report.unconfirmed == 1  # sent while slurmctld was gone; the rest not sent
    ctld_stopped.restart()
    # nothing was half-applied: every managed job is still exactly as submitted
    state = by_id(real, managed)
    assert all(state[i].partitions == ("v100",) and state[i].pending for i in managed)
    report = cycle(tmp_path, real)
    assert report.reconciled == 1  # found not moved, recorded as such
    assert {j.job_id for j in report.jobs if j.outcome == "applied"} == set(managed)


def test_absolute_priority_is_reapplied_after_a_release(jobs: JobTracker, tmp_path: Path) -> None:
    backend = CliBackend()
    fill_v100(jobs, "prio")
    limits = [3, 1, 2]  # minutes: the second job is the shortest
    ids = [
        tag_allowed(
            jobs.submit(
                "-J",
                f"prio-{m}",
                "-p",
                "v100",
                "--gpus-per-node=1",
                "-t",
                str(m),
                "--mem=1000",
                "--wrap",
                "sleep 1",
            ),
            "v100",
        )
        for m in limits
    ]
    cfg = dataclasses.replace(CFG, absolute_priority=True)
    cycle(tmp_path, backend, cfg)
    prio = {i: by_id(backend, ids)[i].priority for i in ids}
    assert prio[ids[1]] > prio[ids[2]] > prio[ids[0]], prio
    for verb in ("hold", "release"):
        subprocess.run(["scontrol", verb, str(ids[0])], check=True, capture_output=True, timeout=30)
    assert by_id(backend, ids)[ids[0]].priority != prio[ids[0]]  # Slurm dropped it
    cycle(tmp_path, backend, cfg)
    assert by_id(backend, ids)[ids[0]].priority == prio[ids[0]]
