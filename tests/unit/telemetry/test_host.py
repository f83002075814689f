"""Host probe (real psutil on this machine), process owners, gres.conf, --push to the DB."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from slurmopt.telemetry.alloc import gres_gpus_for, minor_of, parse_gres_conf
from slurmopt.telemetry.host import job_from_cgroup, probe_host, process_owner


def test_probe_host_reads_this_machine(tmp_path: Path) -> None:
    h = probe_host([str(tmp_path), "/does/not/exist"], cpu_interval_s=0.05)
    assert h.cpu_count >= 1 and 0 <= h.cpu_percent <= 100 * h.cpu_count
    assert h.memory_total_mb > 0 and 0 < h.memory_available_mb <= h.memory_total_mb
    assert h.load_1m >= 0 and h.swap_total_mb >= 0
    assert [d.path for d in h.disks] == [str(tmp_path)]
    assert h.disks[0].total_mb > 0 and h.net_bytes_recv >= 0


@pytest.mark.parametrize(
    ("text", "job"),
    [
        ("0::/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0\n", 4242),
        ("12:memory:/slurm/uid_1000/job_17/step_batch\n0::/\n", 17),
        ("0::/user.slice/user-1000.slice/session-3.scope\n", None),
        ("0::/system.slice/job_runner.service\n", None),
        ("", None),
    ],
)
def test_job_from_cgroup(text: str, job: int | None) -> None:
    assert job_from_cgroup(text) == job


def test_process_owner_of_self_and_of_a_fake_proc(tmp_path: Path) -> None:
    me = process_owner(os.getpid())
    assert me.user is not None and me.cgroup is not None
    fake = tmp_path / str(os.getpid())
    fake.mkdir()
    (fake / "cgroup").write_text("0::/system.slice/slurmstepd.scope/job_99/step_0\n")
    assert process_owner(os.getpid(), proc_root=str(tmp_path)).job_id == 99
    gone = process_owner(2**22 + 12345)
    assert gone.user is None and gone.job_id is None


def test_gres_conf() -> None:
    text = """
# comment
AutoDetect=off
NodeName=gpu-a[1-3] Name=gpu Type=a100 File=/dev/nvidia[0-3]
NodeName=gpu-t1 Name=gpu Type=t4 File=/dev/nvidia0,/dev/nvidia2
NodeName=gpu-x1 Name=gpu Count=2
Name=mps Count=200
"""
    lines = parse_gres_conf(text)
    assert gres_gpus_for(lines, "gpu-a2") == (4, tuple(f"/dev/nvidia{i}" for i in range(4)))
    assert gres_gpus_for(lines, "gpu-t1") == (2, ("/dev/nvidia0", "/dev/nvidia2"))
    assert gres_gpus_for(lines, "gpu-x1") == (2, ())
    assert gres_gpus_for(lines, "cpu1") == (0, ())
    assert minor_of("/dev/nvidia12") == 12 and minor_of("/dev/fake/gpu0") is None
    assert minor_of("/x/dev/nvidia3") == 3 and minor_of("/dev/nvidiactl") is None


def test_cli_probe_push_to_history_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slurmopt.cli.main import cli
    from slurmopt.history import db
    from slurmopt.telemetry import probe as probe_mod
    from slurmopt.telemetry.store import HistoryStore

    from .fake_nvml import FakeGpu, FakeNvml

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    db.upgrade(db.make_engine(url))
    monkeypatch.setattr(
        probe_mod,
        "make_nvml",
        lambda: FakeNvml([FakeGpu(uuid="G0"), FakeGpu(uuid="G1", temp=77)]),
    )
    res = CliRunner().invoke(
        cli,
        [
            "probe",
            "--json",
            "--no-slurm",
            "--node",
            "gpu-a1",
            "--xid-wait-ms",
            "0",
            "--push",
            "--db",
            url,
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["gpus"][1]["temperature_c"] == 77
    pts = HistoryStore(db.make_engine(url)).points_since(0)
    assert [(p.node, p.gpu_index, p.temp_c) for p in pts] == [
        ("gpu-a1", 0, 45.0),
        ("gpu-a1", 1, 77.0),
    ]
    assert "pushed 2 GPU sample(s)" in res.stderr
