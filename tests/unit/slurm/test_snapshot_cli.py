"""``slurmopt snapshot`` and the snapshot loader, through Click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from slurmopt.cli.main import cli
from slurmopt.errors import ConfigError, SlurmParseError, SlurmUnavailable
from slurmopt.slurm import load
from slurmopt.slurm.backend import CliBackend
from slurmopt.slurm.load import dump_snapshot, load_snapshot, save_snapshot
from slurmopt.slurm.parse_nodes import load_json

from .fakes import RECORDED, FakeRunner, fail, ok, recorded_runner


def saved(tmp_path: Path, version: str = "24.11") -> Path:
    snap = CliBackend(recorded_runner(version), clock=lambda: 1_795_804_400).snapshot()
    path = tmp_path / "snap.json"
    save_snapshot(snap, path)
    return path


def test_json_round_trip_through_file(tmp_path: Path) -> None:
    path = saved(tmp_path)
    res = CliRunner().invoke(cli, ["snapshot", "--json", "--snapshot", str(path)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["format"] == 1 and data["slurm_version"] == "24.11.5"
    assert data["source"] == f"file:{path}"
    assert {n["name"] for n in data["nodes"]} >= {"gpu-a1", "cpu1"}
    assert load_snapshot(path).jobs == load_snapshot(path).jobs


def test_table(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["snapshot", "--snapshot", str(saved(tmp_path, "22.05"))])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    a100 = next(ln for ln in lines if ln.startswith("a100 "))
    # gpu-a1 uses 2 of its 4 a100 GPUs, gpu-a2 none: 6 of 8 free; j1 runs; j3 j4 j7 j8 pend.
    assert "a100:6/8" in a100 and a100.split()[-2:] == ["1", "4"]
    assert any(ln.startswith("cpu*") for ln in lines)
    assert any("gpu-a1" in ln and "a100:2/4" in ln for ln in lines)
    assert any(ln.startswith("4 ") and "(held)" in ln for ln in lines)


def test_live_read_unreachable_is_one_line_and_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ("sinfo", "--json")
    runner = FakeRunner(
        {
            ("sinfo", "--version"): ok(("sinfo", "--version"), "slurm-wlm 22.05.8"),
            argv: fail(argv, "sinfo: error: Unable to contact slurm controller (connect failure)"),
        }
    )
    monkeypatch.setattr(load, "get_backend", lambda: CliBackend(runner))
    res = CliRunner().invoke(cli, ["snapshot"])
    assert res.exit_code == SlurmUnavailable.exit_code == 3
    assert res.output.count("\n") == 1 and res.output.startswith("slurmopt: error:")


def test_2205_json_errors_with_rc0_are_unavailable() -> None:
    # What 22.05's sinfo --json prints (rc 0, empty stderr) when slurmctld is unreachable.
    text = json.dumps({"errors": [{"error": "Unspecified error", "errno": -1}], "nodes": []})
    with pytest.raises(SlurmUnavailable):
        load_json(text, what="nodes")
    other = json.dumps({"errors": [{"error": "Invalid user id", "errno": 2002}], "jobs": []})
    with pytest.raises(SlurmParseError, match="Invalid user id"):
        load_json(other, what="jobs")
    with pytest.raises(SlurmParseError):
        load_json("not json", what="jobs")


def test_partial_state_never_returned() -> None:
    runner = recorded_runner("24.11")
    argv = ("squeue", "--all", "--json=v0.0.42")
    runner.table[argv] = ok(argv, '{"jobs": [{"job_id": "x"}]')  # truncated JSON
    with pytest.raises(SlurmParseError):
        CliBackend(runner).snapshot()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"format": 99}', "format 99"),
        ('{"format": 1, "taken_at": 1}', "malformed"),
    ],
)
def test_bad_snapshot_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_snapshot(path)
    res = CliRunner().invoke(cli, ["snapshot", "--snapshot", str(path)])
    assert res.exit_code == ConfigError.exit_code and message in res.output


def test_dump_is_stable() -> None:
    snap = CliBackend(recorded_runner("26.05"), clock=lambda: 5).snapshot()
    assert dump_snapshot(snap) == dump_snapshot(load.Snapshot.from_dict(snap.to_dict()))
    assert RECORDED.is_dir()
