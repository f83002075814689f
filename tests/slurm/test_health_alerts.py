"""``slurmopt alerts --queue`` and the exporter against the real testbed.

Uses ``gpu-t2`` (drained by an "admin" here, always resumed at the end; jobs
pinned to it for the GPU holder test) and a job on the t4 partition for the
exporter.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from slurmopt.cli.exporter import serve
from slurmopt.cli.main import cli
from slurmopt.slurm.backend import get_backend
from slurmopt.telemetry.exporter import SlurmoptCollector, Sources
from tests.slurm.conftest import slurm_cmd, wait_for

NODE = "gpu-t2"


def _state() -> str:
    return slurm_cmd(["sinfo", "-h", "-N", "-n", NODE, "-o", "%t"]).stdout.strip()


def _drained() -> bool:
    return "drain" in _state() or "drng" in _state()


def _available() -> bool:
    # After RESUME slurmctld shows the node as "idle*" (not responding) until its next ping.
    return _state() in ("idle", "mix", "alloc")


@pytest.fixture
def admin_drained(slurm_env: dict[str, str]) -> Iterator[str]:
    wait_for(_available, timeout=90, interval=1.0)
    if _drained():
        pytest.skip(f"{NODE} already drained")
    res = slurm_cmd(
        ["scontrol", "update", f"NodeName={NODE}", "State=DRAIN", "Reason=admin: alert test"]
    )
    assert res.returncode == 0, res.stderr
    wait_for(_drained, timeout=20)
    yield NODE
    if _drained():
        slurm_cmd(["scontrol", "update", f"NodeName={NODE}", "State=RESUME"])
    wait_for(_available, timeout=30)


def alerts(tmp_path: Path, now: int) -> list[dict[str, Any]]:
    res = CliRunner().invoke(
        cli,
        [
            "alerts",
            "--queue",
            "--no-record",
            "--json",
            "--state-file",
            str(tmp_path / "alerts.json"),
            "--now",
            str(now),
        ],
    )
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_node_unavailable_alert_fires_after_its_window_and_recovers(
    admin_drained: str, tmp_path: Path
) -> None:
    t = int(time.time())
    assert [e for e in alerts(tmp_path, t) if e["subject"] == NODE] == []
    fired = [e for e in alerts(tmp_path, t + 600) if e["subject"] == NODE]
    assert [(e["rule"], e["status"]) for e in fired] == [("node_unavailable", "firing")]
    assert "admin: alert test" in fired[0]["message"] and "DRAIN" in fired[0]["message"]
    assert [e for e in alerts(tmp_path, t + 660) if e["subject"] == NODE] == []  # dedup
    slurm_cmd(["scontrol", "update", f"NodeName={NODE}", "State=RESUME"])
    wait_for(_available, timeout=30)
    ev = [e for e in alerts(tmp_path, t + 720) if e["subject"] == NODE]
    assert [(e["rule"], e["status"]) for e in ev] == [("node_unavailable", "resolved")]


def test_exporter_scrape_against_slurm(jobs: Any) -> None:
    job = jobs.submit("-p", "t4", "--gres=gpu:t4:1", "-t", "5", "--mem=100", "--wrap", "sleep 120")
    backend = get_backend()

    def running() -> bool:
        return any(j.job_id == job and j.running for j in backend.jobs())

    wait_for(running, timeout=60)
    server, _ = serve("127.0.0.1:0", SlurmoptCollector(Sources(snapshot=backend.snapshot)))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=30) as r:
            text = r.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    m = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert m[("slurmopt_exporter_source_up", (("source", "slurm"),))] == 1
    assert m[("slurmopt_partition_jobs", (("partition", "t4"), ("state", "running")))] >= 1
    assert m[("slurmopt_partition_gpus", (("partition", "t4"), ("state", "running")))] >= 1
    # 2 T4 nodes x 4 GPUs, at least one in use by our job.
    assert 0 <= m[("slurmopt_free_gpus", (("gpu_type", "t4"),))] <= 7


def test_gpu_holders_from_real_allocation(jobs: Any, slurm_env: dict[str, str]) -> None:
    """Fake NVML GPUs on gpu-t2, real Slurm allocations and the testbed's gres.conf."""
    from slurmopt.model import JobState
    from slurmopt.telemetry.probe import ProbeConfig, ProbeInputs, run_probe
    from tests.unit.telemetry.fake_nvml import FakeGpu, FakeNvml

    a = jobs.submit(
        "-p", "t4", "-w", NODE, "--gres=gpu:t4:1", "-t", "5", "--mem=100", "--wrap", "sleep 120"
    )
    b = jobs.submit(
        "-p", "t4", "-w", NODE, "--gres=gpu:t4:2", "-t", "5", "--mem=100", "--wrap", "sleep 120"
    )
    backend = get_backend()

    def both_running() -> Any:
        running = backend.jobs(states=[JobState.RUNNING])
        ids = {j.job_id for j in running}
        return running if {a, b} <= ids else None

    running = wait_for(both_running, timeout=60)
    gres = Path(slurm_env["SLURM_CONF"]).with_name("gres.conf")
    fake = FakeNvml([FakeGpu(uuid=f"GPU-{i}", minor=i) for i in range(4)])
    res = run_probe(
        NODE,
        config=ProbeConfig(xid_wait_ms=0, with_host=False, gres_conf=str(gres)),
        jobs=running,
        inputs=ProbeInputs(nvml=lambda: fake),
    )
    holders = {g.index: g.job_id for g in res.gpus}
    assert res.allocation_source == "slurm"
    assert len([i for i, j in holders.items() if j == a]) == 1
    assert len([i for i, j in holders.items() if j == b]) == 2
    assert list(holders.values()).count(None) == 1
    assert all(g.job_user for g in res.gpus if g.job_id is not None)
