"""Health rules, latches, the drain/resume decision, the run, and the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from slurmopt.cli.main import cli
from slurmopt.errors import SlurmUnavailable
from slurmopt.model import Node, NodeState
from slurmopt.telemetry.gpus import FieldError, GpuSample
from slurmopt.telemetry.health import (
    REASON_PREFIX,
    Action,
    HealthConfig,
    Verdict,
    clear_latches,
    decide,
    evaluate,
)
from slurmopt.telemetry.nvml import NVML_ERROR_NO_PERMISSION, NVML_ERROR_UNKNOWN
from slurmopt.telemetry.probe import ProbeResult
from slurmopt.telemetry.runhealth import (
    EXIT_HEALTHY,
    EXIT_NO_DECISION,
    EXIT_UNHEALTHY,
    expected_gpus,
    load_state,
    run_health,
    save_state,
)

CFG = HealthConfig()


def gpu(i: int, **kw: Any) -> GpuSample:
    base: dict[str, Any] = {
        "index": i,
        "uuid": f"GPU-{i}",
        "temperature_c": 50,
        "ecc_volatile_uncorrected": 0,
        "ecc_aggregate_uncorrected": 0,
        "remap_pending": False,
        "remap_failed": False,
    }
    base.update(kw)
    return GpuSample(**base)


def probe(*gpus: GpuSample, **kw: Any) -> ProbeResult:
    return ProbeResult(
        node="gpu-t1", taken_at=1.0, gpus=gpus, nvml_ok=kw.pop("nvml_ok", True), **kw
    )


def rules(v: Verdict) -> list[str]:
    return [f.rule for f in v.findings]


def test_healthy() -> None:
    v = evaluate(probe(gpu(0), gpu(1)), CFG, {}, expected_gpus=2)
    assert v.healthy and v.findings == ()


def test_gpu_count_and_nvml_failure() -> None:
    v = evaluate(probe(gpu(0)), CFG, {}, expected_gpus=4)
    assert rules(v) == ["gpu_count"] and "expected 4 GPUs, NVML sees 1" in v.reason()
    nodrv = probe(nvml_ok=False, gpu_reason="no NVIDIA driver: x")
    v = evaluate(nodrv, CFG, {}, expected_gpus=4)
    assert rules(v) == ["nvml", "gpu_count"]
    # A CPU node without a driver is healthy.
    assert evaluate(nodrv, CFG, {}, expected_gpus=0).healthy
    assert evaluate(nodrv, replace(CFG, expected_gpus=2), {}, expected_gpus=0).findings


def test_lost_gpu_and_field_errors() -> None:
    lost = gpu(1, lost=True, errors=(FieldError("temperature", 15, "GPU is lost"),))
    bad = gpu(
        0,
        errors=(
            FieldError("utilization", NVML_ERROR_UNKNOWN, "Unknown Error"),
            FieldError("power", NVML_ERROR_NO_PERMISSION, "no perm"),
        ),
    )
    v = evaluate(probe(bad, lost), CFG, {}, expected_gpus=2)
    assert rules(v) == ["nvml", "gpu_lost"]
    assert "GPU0 NVML error on utilization" in v.reason() and "GPU1 lost" in v.reason()
    perm_only = gpu(0, errors=(FieldError("power", NVML_ERROR_NO_PERMISSION, "no perm"),))
    assert evaluate(probe(perm_only), CFG, {}).healthy


def test_watchdog_timeout_is_nvml_failure() -> None:
    p = probe(gpu(0), nvml_ok=False, nvml_timed_out=True, gpu_reason="NVML watchdog: timed out")
    assert rules(evaluate(p, CFG, {}, expected_gpus=1)) == ["nvml"]


def test_row_remap_temperature_and_config_switches() -> None:
    p = probe(
        gpu(0, remap_failed=True),
        gpu(1, remap_pending=True),
        gpu(2, temperature_c=95),
        gpu(3, retired_pages_pending=True),
    )
    v = evaluate(p, CFG, {})
    assert rules(v) == ["row_remap", "row_remap", "temperature", "row_remap"]
    assert "GPU2 95C > 90C" in v.reason()
    off = replace(CFG, check_row_remap=False, max_temperature_c=None)
    assert evaluate(p, off, {}).healthy


def test_new_uncorrected_ecc_is_latched_until_volatile_reset() -> None:
    state: dict[str, Any] = {}
    assert evaluate(probe(gpu(0, ecc_aggregate_uncorrected=3)), CFG, state).healthy  # baseline
    assert state["GPU-0"]["ecc_unc_aggregate"] == 3
    v = evaluate(probe(gpu(0, ecc_aggregate_uncorrected=5, ecc_volatile_uncorrected=2)), CFG, state)
    assert rules(v) == ["ecc"] and "aggregate 3->5" in v.reason()
    # Same counts next time: still unhealthy (latched), so the node is not resumed.
    v = evaluate(probe(gpu(0, ecc_aggregate_uncorrected=5, ecc_volatile_uncorrected=2)), CFG, state)
    assert rules(v) == ["ecc"]
    # After a GPU reset the volatile count is 0: latch cleared.
    assert evaluate(probe(gpu(0, ecc_aggregate_uncorrected=5)), CFG, state).healthy
    # Survives a JSON round trip (the state file).
    assert json.loads(json.dumps(state)) == state


def test_critical_xid_latched_and_cleared_by_admin() -> None:
    state: dict[str, Any] = {}
    v = evaluate(probe(gpu(0, xids=(13, 79))), CFG, state)
    assert rules(v) == ["xid"] and "critical XID 79" in v.reason()
    assert evaluate(probe(gpu(0, xids=(13,))), CFG, state).findings  # latched
    assert clear_latches(state) == 1
    assert evaluate(probe(gpu(0)), CFG, state).healthy
    assert evaluate(probe(gpu(0, xids=(13,))), CFG, {}).healthy  # 13 is not critical


def test_reason_is_bounded_and_prefixed() -> None:
    p = probe(*[gpu(i, temperature_c=99) for i in range(40)])
    r = evaluate(p, CFG, {}).reason()
    assert r.startswith(REASON_PREFIX) and len(r) <= 240 and r.endswith("...")


def node(flags: frozenset[str] = frozenset(), reason: str | None = None, gpus: int = 4) -> Node:
    return Node(
        name="gpu-t1",
        state=NodeState.IDLE,
        flags=flags,
        reason=reason,
        gpus={"t4": gpus} if gpus else {},
    )


BAD = Verdict("gpu-t1", (evaluate(probe(gpu(0, remap_failed=True)), CFG, {}).findings))
GOOD = Verdict("gpu-t1", ())


@pytest.mark.parametrize(
    ("n", "verdict", "action"),
    [
        (node(), GOOD, Action.NONE),
        (node(), BAD, Action.DRAIN),
        (node(frozenset({"DRAIN"}), "slurmopt: GPU0 row remap failed"), GOOD, Action.RESUME),
        (node(frozenset({"DRAIN"}), "slurmopt: GPU0 row remap failed"), BAD, Action.NONE),
        (node(frozenset({"DRAIN"}), "slurmopt: GPU2 95C > 90C"), BAD, Action.DRAIN),
        (node(frozenset({"DRAIN"}), "admin: bad fan"), BAD, Action.NONE),
        (node(frozenset({"DRAIN"}), "admin: bad fan"), GOOD, Action.NONE),
        (None, BAD, Action.NONE),
    ],
)
def test_decide(n: Node | None, verdict: Verdict, action: Action) -> None:
    assert decide(n, verdict).action is action


@dataclass
class FakeControl:
    nodes: dict[str, Node]
    calls: list[tuple[str, ...]] = field(default_factory=list)
    fail: bool = False

    def node(self, name: str) -> Node | None:
        if self.fail:
            raise SlurmUnavailable("controller down")
        return self.nodes.get(name)

    def drain(self, name: str, reason: str) -> None:
        self.calls.append(("drain", name, reason))
        n = self.nodes[name]
        self.nodes[name] = replace(n, flags=n.flags | {"DRAIN"}, reason=reason)

    def resume(self, name: str) -> None:
        self.calls.append(("resume", name))
        self.nodes[name] = replace(self.nodes[name], flags=frozenset(), reason=None)

    def set_extra(self, name: str, text: str) -> None:
        self.calls.append(("extra", name, text))


def test_run_health_drain_then_resume_and_dry_run() -> None:
    ctl = FakeControl({"gpu-t1": node()})
    bad = probe(gpu(0, remap_failed=True), gpu(1), gpu(2), gpu(3))
    good = probe(gpu(0), gpu(1), gpu(2), gpu(3))
    rep = run_health(bad, node_name="gpu-t1", control=ctl, config=CFG, state={}, dry_run=True)
    assert rep.decision.action is Action.DRAIN and not rep.applied and ctl.calls == []
    assert rep.exit_code == EXIT_UNHEALTHY
    rep = run_health(bad, node_name="gpu-t1", control=ctl, config=CFG, state={})
    assert rep.applied and ctl.calls[0][0] == "drain" and ctl.calls[0][2].startswith("slurmopt:")
    rep = run_health(good, node_name="gpu-t1", control=ctl, config=CFG, state={})
    assert rep.decision.action is Action.RESUME and ctl.calls[-1] == ("resume", "gpu-t1")
    assert rep.exit_code == EXIT_HEALTHY and rep.to_dict()["action"] == "resume"


def test_run_health_uses_slurm_gres_for_expected_count() -> None:
    ctl = FakeControl({"gpu-t1": node(gpus=4)})
    rep = run_health(probe(gpu(0)), node_name="gpu-t1", control=ctl, config=CFG, state={})
    assert [f.rule for f in rep.verdict.findings] == ["gpu_count"] and rep.applied


def test_run_health_when_slurm_is_down_changes_nothing() -> None:
    ctl = FakeControl({}, fail=True)
    rep = run_health(probe(gpu(0)), node_name="gpu-t1", control=ctl, config=CFG, state={})
    assert rep.error is not None and rep.exit_code == EXIT_NO_DECISION and ctl.calls == []


def test_expected_gpus_sources() -> None:
    gres = "NodeName=gpu-t[1-2] Name=gpu Type=t4 File=/dev/nvidia[0-3]\nName=mps Count=100\n"
    assert expected_gpus(node(gpus=8), gres, "gpu-t1") == 8
    assert expected_gpus(None, gres, "gpu-t1") == 4
    assert expected_gpus(None, gres, "cpu1") == 0
    assert expected_gpus(node(gpus=0), None, "cpu1") == 0
    assert expected_gpus(None, None, "x") is None


def test_state_file_round_trip_and_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "state.json"
    assert load_state(p) == {}
    save_state(p, {"GPU-0": {"ecc_unc_aggregate": 1}})
    assert load_state(p) == {"GPU-0": {"ecc_unc_aggregate": 1}}
    p.write_text("{not json")
    assert load_state(p) == {}


def test_cli_health_with_probe_file(tmp_path: Path) -> None:
    pf = tmp_path / "probe.json"
    pf.write_text(json.dumps(probe(gpu(0, temperature_c=97)).to_dict()))
    state = tmp_path / "state.json"
    res = CliRunner().invoke(
        cli,
        [
            "health",
            "--node",
            "gpu-t1",
            "--probe-file",
            str(pf),
            "--no-slurm",
            "--json",
            "--state-file",
            str(state),
        ],
    )
    assert res.exit_code == EXIT_UNHEALTHY, res.output
    out = json.loads(res.output)
    assert out["healthy"] is False and out["findings"][0]["rule"] == "temperature"
    res = CliRunner().invoke(
        cli,
        [
            "health",
            "--node",
            "gpu-t1",
            "--probe-file",
            str(pf),
            "--no-slurm",
            "--max-temp",
            "99",
            "--state-file",
            str(state),
        ],
    )
    assert res.exit_code == EXIT_HEALTHY and "healthy" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    res = CliRunner().invoke(
        cli, ["health", "--probe-file", str(bad), "--no-slurm", "--state-file", str(state)]
    )
    assert res.exit_code == 2


def test_cli_probe_json_without_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    from slurmopt.telemetry import probe as probe_mod
    from slurmopt.telemetry.nvml import NVML_ERROR_DRIVER_NOT_LOADED

    from .fake_nvml import FakeNvml

    monkeypatch.setattr(
        probe_mod,
        "make_nvml",
        lambda: FakeNvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED),
    )
    res = CliRunner().invoke(cli, ["probe", "--json", "--no-slurm", "--node", "n1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (
        out["gpus"] == []
        and out["gpu_reason"] == "no NVIDIA driver: fake init failure (NVML code 9)"
    )
    assert out["host"]["cpu_count"] >= 1


def test_telemetry_config_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slurmopt import config
    from slurmopt.errors import ConfigError
    from slurmopt.telemetry.config import TelemetryConfig

    cfg = config.build_section(
        TelemetryConfig,
        {
            "max_temperature_c": 70,
            "critical_xids": [79],
            "anomaly_metrics": ["temp_c"],
            "expected_gpus": 4,
        },
        where="telemetry",
    )
    assert cfg.health().max_temperature_c == 70 and cfg.health().critical_xids == {79}
    assert cfg.health().expected_gpus == 4 and TelemetryConfig().health().expected_gpus is None
    assert cfg.alerts().anomaly.metrics == ("temp_c",)
    with pytest.raises(ConfigError):
        config.build_section(TelemetryConfig, {"max_temp": 1}, where="telemetry")
    # Registered, the section drives the command's defaults; a flag still wins.
    toml = tmp_path / "slurmopt.toml"
    toml.write_text("[telemetry]\nmax_temperature_c = 70\n")
    monkeypatch.setitem(config.SECTIONS, "telemetry", "slurmopt.telemetry.config:TelemetryConfig")
    monkeypatch.setenv("SLURMOPT_CONFIG", str(toml))
    pf = tmp_path / "probe.json"
    pf.write_text(json.dumps(probe(gpu(0, temperature_c=75)).to_dict()))
    args = ["health", "--probe-file", str(pf), "--no-slurm", "--state-file", str(tmp_path / "s")]
    assert CliRunner().invoke(cli, args).exit_code == EXIT_UNHEALTHY
    assert CliRunner().invoke(cli, [*args, "--max-temp", "80"]).exit_code == EXIT_HEALTHY


def test_kernel_log_xids_new_only_latched_and_per_boot() -> None:
    from slurmopt.telemetry.kmsg import KernelXid

    def p(boot: str, *xids: KernelXid) -> ProbeResult:
        return replace(probe(gpu(0), gpu(1)), kernel_xids=xids, boot_id=boot)

    old = KernelXid(10, "3b:00", 79, gpu_index=1)
    state: dict[str, Any] = {}
    v = evaluate(p("b1", old), CFG, state)  # first run: everything since boot is new
    assert rules(v) == ["xid"] and v.findings[0].gpu_index == 1
    assert clear_latches(state) == 1
    assert evaluate(p("b1", old), CFG, state).healthy  # already judged: not again
    noise = KernelXid(11, "3b:00", 13, gpu_index=1)
    assert evaluate(p("b1", old, noise), CFG, state).healthy  # 13 is not critical
    new = KernelXid(12, "5e:00", 95)  # no GPU matches its bus: a node-level finding
    v = evaluate(p("b1", old, noise, new), CFG, state)
    assert [(f.rule, f.gpu_index) for f in v.findings] == [("xid", None)]
    assert "critical XID 95" in v.reason()
    clear_latches(state)
    # After a reboot the sequence restarts: a low seq is new again.
    v = evaluate(p("b2", KernelXid(3, "3b:00", 48, gpu_index=0)), CFG, state)
    assert [(f.rule, f.gpu_index) for f in v.findings] == [("xid", 0)]
