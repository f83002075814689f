"""GPU processes outside their Slurm allocation: detection, alerting, opt-in kill."""

from __future__ import annotations

import signal

from slurmopt.model import Job, JobState
from slurmopt.telemetry.alerts import AlertConfig, AlertEngine
from slurmopt.telemetry.anomaly import AnomalyConfig
from slurmopt.telemetry.host import ProcessOwner
from slurmopt.telemetry.probe import ProbeConfig, ProbeInputs, run_probe
from slurmopt.telemetry.security import SecurityConfig, enforce, find_foreign, observations

from .fake_nvml import GIB, FakeGpu, FakeNvml

OWNERS = {
    10: ProcessOwner("alice", 7, "/slurm/uid_1000/job_7/step_0"),  # legit
    11: ProcessOwner("mallory", None, "/user.slice/user-1005.slice/session-3.scope"),
    12: ProcessOwner("bob", 8, "/slurm/uid_1001/job_8/step_0"),  # job 8 on job 7's GPU
    13: ProcessOwner("root", None, "/system.slice/dcgm.service"),  # allowed
    14: ProcessOwner("carol", None, "/user.slice/user-1002.slice"),  # on a free GPU
}


def probe_with_procs(at: float = 1000.0):  # type: ignore[no-untyped-def]
    gpus = [
        FakeGpu(uuid="GPU-0", minor=0, procs=[(10, GIB), (11, GIB), (12, None), (13, GIB)]),
        FakeGpu(uuid="GPU-1", minor=1, procs=[(14, GIB)]),
        FakeGpu(uuid="GPU-2", minor=2),
    ]
    jobs = [
        Job(
            job_id=7,
            name="train",
            user="alice",
            state=JobState.RUNNING,
            partitions=("a100",),
            nodes=("gpu-a1",),
            gpu_indexes={"gpu-a1": (0,)},
        )
    ]
    inputs = ProbeInputs(
        nvml=lambda: FakeNvml(gpus),
        host=lambda p: None,  # type: ignore[arg-type,return-value]
        owner=lambda pid: OWNERS[pid],
        clock=lambda: at,
        read_text=lambda p: None,
        read_kmsg=lambda p: [],
    )
    return run_probe(
        "gpu-a1", config=ProbeConfig(xid_wait_ms=0, with_host=False), jobs=jobs, inputs=inputs
    )


def test_foreign_processes_flagged() -> None:
    found = find_foreign(probe_with_procs())
    got = {(f.gpu_index, f.pid): f.why for f in found}
    assert got == {
        (0, 11): "GPU held by job 7 of alice",
        (0, 12): "process of job 8, GPU held by job 7",
        (1, 14): "no Slurm job holds this GPU",
    }
    strict = find_foreign(probe_with_procs(), SecurityConfig(allowed_users=frozenset()))
    assert (0, 13) in {(f.gpu_index, f.pid) for f in strict}


def test_foreign_process_alert_fires_and_recovers() -> None:
    eng = AlertEngine(AlertConfig(anomaly=AnomalyConfig(metrics=())), {})
    p = probe_with_procs(1000.0)
    eng.observe(observations(p, find_foreign(p)))
    ev = eng.evaluate(1000)
    assert sorted(e.subject for e in ev) == ["gpu-a1:gpu0", "gpu-a1:gpu1"]
    assert all(e.rule == "gpu_foreign_process" and e.severity == "critical" for e in ev)
    assert any("mallory" in e.message and "pid 11" in e.message for e in ev)
    # Next probe: the processes are gone.
    p2 = probe_with_procs(1060.0)
    eng.observe(observations(p2, []))
    assert sorted(e.status for e in eng.evaluate(1060)) == ["resolved", "resolved"]


def test_nothing_killed_unless_enabled() -> None:
    found = find_foreign(probe_with_procs())
    sent: list[tuple[int, int]] = []
    assert enforce(found, SecurityConfig(), kill=lambda pid, sig: sent.append((pid, sig))) == []
    assert sent == []
    done = enforce(found, SecurityConfig(kill=True), kill=lambda pid, sig: sent.append((pid, sig)))
    assert sorted(done) == [11, 12, 14] and {s for _, s in sent} == {signal.SIGTERM}
