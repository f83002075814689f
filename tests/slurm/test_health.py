"""``slurmopt health`` / ``slurmopt probe --push slurm`` against the real testbed.

Acts on ``gpu-t2`` (a T4 node of ``etc/testbed/default.toml`` that no other
test relies on) and always leaves it resumed with an empty ``Extra``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from slurmopt.cli.main import cli
from slurmopt.telemetry.gpus import GpuSample
from slurmopt.telemetry.nodectl import BackendNodeControl
from slurmopt.telemetry.probe import ProbeResult
from slurmopt.telemetry.runhealth import EXIT_HEALTHY, EXIT_UNHEALTHY
from tests.slurm.conftest import reachable, slurm_cmd, wait_for

NODE = "gpu-t2"
ADMIN_REASON = "admin: fan replacement"


def node_fields() -> dict[str, str]:
    """``scontrol -o show node NODE`` as key -> value (Reason may contain spaces: last key)."""
    out = slurm_cmd(["scontrol", "-o", "show", "node", NODE]).stdout.strip()
    fields: dict[str, str] = {}
    reason = ""
    if " Reason=" in out:
        out, reason = out.split(" Reason=", 1)
        fields["Reason"] = reason.rsplit(" [", 1)[0]
    for tok in out.split():
        k, _, v = tok.partition("=")
        fields[k] = v
    return fields


def drained() -> bool:
    return "DRAIN" in node_fields().get("State", "")


def resume_node() -> None:
    if drained():
        slurm_cmd(["scontrol", "update", f"NodeName={NODE}", "State=RESUME"])
    wait_for(lambda: not drained(), timeout=20)


def responding() -> bool:
    """slurmctld answers and gpu-t2 is not marked not-responding (``idle*``)."""
    if not reachable():
        return False
    out = slurm_cmd(["sinfo", "-h", "-N", "-n", NODE, "-o", "%t"]).stdout.strip()
    return bool(out) and not out.endswith("*")


@pytest.fixture
def t2(slurm_env: dict[str, str]) -> Iterator[str]:
    # Another session may have just restarted slurmctld: nodes answer again within a minute.
    wait_for(responding, timeout=90, interval=1.0)
    fields = node_fields()
    if "DRAIN" in fields.get("State", "") and not fields.get("Reason", "").startswith("slurmopt:"):
        pytest.skip(f"{NODE} is drained by someone else: {fields.get('Reason')}")
    resume_node()
    yield NODE
    resume_node()
    slurm_cmd(["scontrol", "update", f"NodeName={NODE}", "Extra="])


def probe_file(tmp_path: Path, name: str, gpus: int = 4, **bad: Any) -> str:
    samples = []
    for i in range(gpus):
        kw: dict[str, Any] = {"index": i, "uuid": f"GPU-t2-{i}", "temperature_c": 40}
        if i == 0:
            kw.update(bad)
        samples.append(GpuSample(**kw))
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(ProbeResult(NODE, 1.0, gpus=tuple(samples), nvml_ok=True).to_dict()))
    return str(p)


def health(tmp_path: Path, pf: str, *extra: str) -> tuple[int, dict[str, Any]]:
    res = CliRunner().invoke(
        cli,
        [
            "health",
            "--node",
            NODE,
            "--probe-file",
            pf,
            "--json",
            "--state-file",
            str(tmp_path / "state.json"),
            *extra,
        ],
    )
    assert res.exit_code in (EXIT_HEALTHY, EXIT_UNHEALTHY), res.output
    return res.exit_code, json.loads(res.stdout)


def test_health_drains_faulty_node_and_resumes_it(t2: str, tmp_path: Path) -> None:
    bad = probe_file(tmp_path, "bad", remap_failed=True)
    good = probe_file(tmp_path, "good")

    code, out = health(tmp_path, bad, "--dry-run")
    assert code == EXIT_UNHEALTHY and out["action"] == "drain" and not out["applied"]
    assert not drained()

    code, out = health(tmp_path, bad)
    assert code == EXIT_UNHEALTHY and out["applied"]
    wait_for(drained, timeout=20)
    reason = node_fields()["Reason"]
    assert reason.startswith("slurmopt:") and "GPU0 row remap failed" in reason

    code, out = health(tmp_path, bad)  # same fault again: nothing to change
    assert code == EXIT_UNHEALTHY and out["action"] == "none" and drained()

    code, out = health(tmp_path, good)
    assert code == EXIT_HEALTHY and out["action"] == "resume" and out["applied"]
    wait_for(lambda: not drained(), timeout=20)


def test_missing_gpu_against_slurm_gres(t2: str, tmp_path: Path) -> None:
    code, out = health(tmp_path, probe_file(tmp_path, "three", gpus=3), "--dry-run")
    assert code == EXIT_UNHEALTHY and out["expected_gpus"] == 4
    assert [f["rule"] for f in out["findings"]] == ["gpu_count"]


def test_admin_drain_is_never_touched(t2: str, tmp_path: Path) -> None:
    res = slurm_cmd(
        ["scontrol", "update", f"NodeName={NODE}", "State=DRAIN", f"Reason={ADMIN_REASON}"]
    )
    assert res.returncode == 0, res.stderr
    wait_for(drained, timeout=20)
    code, out = health(tmp_path, probe_file(tmp_path, "good"))
    assert code == EXIT_HEALTHY and out["action"] == "none"
    code, out = health(tmp_path, probe_file(tmp_path, "hot", temperature_c=99))
    assert code == EXIT_UNHEALTHY and out["action"] == "none" and not out["applied"]
    fields = node_fields()
    assert "DRAIN" in fields["State"] and fields["Reason"] == ADMIN_REASON


def test_probe_push_to_node_extra(t2: str) -> None:
    res = CliRunner().invoke(
        cli,
        [
            "probe",
            "--node",
            NODE,
            "--no-slurm",
            "--xid-wait-ms",
            "0",
            "--push",
            "--push-to",
            "slurm",
        ],
    )
    assert res.exit_code == 0, res.output
    node = BackendNodeControl().node(NODE)
    assert node is not None and node.extra is not None
    extra = json.loads(node.extra)
    assert extra["slurmopt"] == 1 and isinstance(extra["g"], list) and extra["t"] > 0


def test_live_probe_without_driver_on_a_gpu_node_is_unhealthy(t2: str, tmp_path: Path) -> None:
    """No probe file: this machine has no NVIDIA driver, but Slurm says gpu-t2 has 4 T4s."""
    res = CliRunner().invoke(
        cli,
        [
            "health",
            "--node",
            NODE,
            "--dry-run",
            "--json",
            "--state-file",
            str(tmp_path / "s.json"),
            "--timeout",
            "30",
        ],
    )
    assert res.exit_code == EXIT_UNHEALTHY, res.output
    out = json.loads(res.stdout)
    assert [f["rule"] for f in out["findings"]] == ["nvml", "gpu_count"]
    assert out["expected_gpus"] == 4 and out["action"] == "drain" and not out["applied"]
    assert not drained()
