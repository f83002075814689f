"""``slurmopt plan`` through Click's runner, on the snapshot fixtures in tests/data/optimize."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from slurmopt.cli.main import cli

DATA = Path(__file__).parents[2] / "data" / "optimize"
HETERO = str(DATA / "snapshot_hetero.json")
SYNTH = str(DATA / "snapshot_synth48.json")


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["plan", *args])
    return res.exit_code, res.stdout, res.stderr


def test_plan_json_schema_and_content() -> None:
    code, out, _ = run("--snapshot", HETERO, "--policy", "earliest-completion", "--json")
    assert code == 0
    rep = json.loads(out)
    assert rep["schema"] == 1
    assert rep["policy"] == "earliest-completion" and rep["solver"] == "earliest-completion"
    assert rep["objective_kind"] == "completion"
    assert rep["objective"] > 0 and rep["wall_s"] >= rep["solver_wall_s"] >= 0
    jobs = {j["job_id"]: j for j in rep["jobs"]}
    # job 1 lists a100,h100: both eligible; the faster h100 completes first
    cands = {c["partition"]: c for c in jobs[1]["candidates"]}
    assert set(cands) == {"a100", "h100"}
    assert jobs[1]["chosen"] == "h100"
    assert cands["h100"]["runtime"] < cands["a100"]["runtime"]
    assert cands["h100"]["end"] == pytest.approx(cands["h100"]["start"] + cands["h100"]["runtime"])
    # ineligible candidates carry their reason
    seven = {c["partition"]: c for c in jobs[7]["candidates"]}
    assert seven["restricted"]["eligible"] is False
    assert "AllowAccounts=chem" in seven["restricted"]["reason"]
    nine = {c["partition"]: c for c in jobs[9]["candidates"]}
    assert nine["maint"]["reason"] == "partition is DOWN"
    # jobs no partition can ever run are listed with why
    assert set(rep["unplaced"]) == {"5", "6"}
    assert "exceeds MaxTime" in rep["unplaced"]["6"]
    assert rep["stats"]["variable"] == len(rep["jobs"])


def test_plan_text_output() -> None:
    code, out, _ = run("--snapshot", HETERO, "--policy", "earliest-start")
    assert code == 0
    assert out.startswith("plan: policy earliest-start (solver earliest-start, seed 0)")
    assert "job 1 job1 prio 5000 [a100,h100] -> " in out
    assert "not eligible: partition is DOWN" in out
    assert "jobs no allowed partition can ever run:" in out
    assert "  job 5: v100: needs 1 node(s)" in out


def test_plan_same_seed_same_output() -> None:
    a = json.loads(run("--snapshot", SYNTH, "--policy", "least-loaded", "--json", "--seed", "3")[1])
    b = json.loads(run("--snapshot", SYNTH, "--policy", "least-loaded", "--json", "--seed", "3")[1])
    assert [(j["job_id"], j["chosen"]) for j in a["jobs"]] == [
        (j["job_id"], j["chosen"]) for j in b["jobs"]
    ]
    assert a["objective"] == b["objective"]


def test_plan_config_file_changes_the_objective(tmp_path: Path) -> None:
    cfg = tmp_path / "slurmopt.toml"
    cfg.write_text('[optimize]\nobjective = "wait"\nwindow = 3\n')
    code, out, _ = run("--snapshot", HETERO, "--policy", "current", "--json", "--config", str(cfg))
    assert code == 0, out
    rep = json.loads(out)
    assert rep["objective_kind"] == "wait"


def test_plan_unknown_policy_is_a_clean_error() -> None:
    code, _, err = run("--snapshot", HETERO, "--policy", "nope")
    assert code == 2
    assert "unknown policy 'nope'" in err


def test_plan_missing_snapshot_file() -> None:
    code, _, err = run("--snapshot", "/nonexistent/snap.json")
    assert code == 2
    assert "cannot read snapshot" in err


def test_plan_reads_the_live_cluster_through_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from slurmopt.model import Snapshot
    from slurmopt.slurm import load

    snap = Snapshot.from_dict(json.loads(Path(HETERO).read_text()))

    class FakeBackend:
        calls = 0

        def snapshot(self) -> Snapshot:
            FakeBackend.calls += 1
            return snap

    monkeypatch.setattr(load, "get_backend", FakeBackend)
    code, out, _ = run("--policy", "current", "--json")
    assert code == 0
    assert FakeBackend.calls == 1
    rep = json.loads(out)
    assert rep["source"] == "hand-built"
    assert {j["job_id"] for j in rep["jobs"]} == {1, 2, 3, 4, 7, 8, 9}


def test_plan_changed_lists_only_jobs_placed_unlike_slurm() -> None:
    code, out, _ = run("--snapshot", HETERO, "--policy", "earliest-completion", "--json")
    rep = json.loads(out)
    jobs = {j["job_id"]: j for j in rep["jobs"]}
    # job 3 lists v100,a100,h100: Slurm starts it where it starts first (v100, free now),
    # the plan puts it where it ends first (h100)
    assert jobs[3]["slurm"] == "v100" and jobs[3]["chosen"] == "h100" and jobs[3]["changed"]
    assert not jobs[2]["changed"]  # a single partition: nothing to choose
    assert rep["changed"] == sum(1 for j in rep["jobs"] if j["changed"]) >= 1
    code, out, _ = run(
        "--snapshot", HETERO, "--policy", "earliest-completion", "--json", "--changed"
    )
    assert code == 0
    assert {j["job_id"] for j in json.loads(out)["jobs"]} == {
        j["job_id"] for j in rep["jobs"] if j["changed"]
    }
    _, text, _ = run("--snapshot", HETERO, "--policy", "earliest-completion", "--changed")
    assert "job 3 job3 prio 3500 [v100,a100,h100] -> h100 (Slurm: v100)" in text
    assert "job 2 " not in text


def test_plan_is_the_same_across_processes_and_hash_seeds() -> None:
    import os
    import subprocess
    import sys

    outs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                "from slurmopt.cli.main import cli; cli()",
                "plan",
                "--snapshot",
                SYNTH,
                "--policy",
                "earliest-completion",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        rep = json.loads(res.stdout)
        outs.append(([(j["job_id"], j["chosen"]) for j in rep["jobs"]], rep["objective"]))
    assert outs[0] == outs[1]
