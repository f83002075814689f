"""``slurmopt simulate`` through Click's runner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from slurmopt.cli.main import cli

SPEC = """
name = "mini"
reference_gpu_type = "old"
[[nodes]]
name = "o[1-2]"
cpus = 8
memory_mb = 8000
gpus = 2
gpu_type = "old"
[[nodes]]
name = "n1"
cpus = 8
memory_mb = 8000
gpus = 2
gpu_type = "new"
[[partitions]]
name = "old"
nodes = ["o[1-2]"]
[[partitions]]
name = "new"
nodes = ["n1"]
[gpu_speed]
old = 1.0
new = 2.0
"""

CSV = "job_id,submit,runtime,gpus,partition\n" + "".join(
    f"{i},{i * 10},{100 + i},{1 + i % 2},{'old' if i % 3 else 'new'}\n" for i in range(1, 41)
)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "mini.toml"
    spec.write_text(SPEC)
    trace = tmp_path / "t.csv"
    trace.write_text(CSV)
    return spec, trace


def test_simulate_json(tmp_path: Path) -> None:
    spec, trace = _files(tmp_path)
    args = ["simulate", "--trace", str(trace), "--format", "csv", "--cluster", str(spec)]
    res = CliRunner().invoke(cli, [*args, "--policy", "as-submitted", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["jobs"] == 40 and data["policy"] == "as-submitted" and data["total_gpus"] == 6
    m = data["metrics"]
    assert m["jobs"] == 40 and m["wait"]["mean"] >= 0 and m["ratio_to_lower_bound"] >= 1.0
    assert m["utilization"] is None or m["utilization"] >= 0
    fast = CliRunner().invoke(cli, [*args, "--policy", "est-completion", "--json"])
    assert fast.exit_code == 0, fast.output
    assert json.loads(fast.output)["metrics"]["jct"]["mean"] <= m["jct"]["mean"]


def test_simulate_text_and_plot(tmp_path: Path) -> None:
    spec, trace = _files(tmp_path)
    png = tmp_path / "out.png"
    res = CliRunner().invoke(
        cli,
        ["simulate", "--trace", str(trace), "--format", "csv", "--cluster", str(spec),
         "--load", "2", "--plot", str(png)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "JCT" in res.output and "lower bd" in res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_errors(tmp_path: Path) -> None:
    spec, trace = _files(tmp_path)
    base = ["simulate", "--trace", str(trace), "--format", "csv", "--cluster", str(spec)]
    bad = CliRunner().invoke(cli, [*base, "--policy", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output
    wrong = CliRunner().invoke(cli, [*base[:4], "swf", *base[5:]])
    assert wrong.exit_code == 2  # a CSV read as SWF is a ConfigError


def test_swf_with_unknown_waits_says_why_and_can_be_kept(tmp_path: Path) -> None:
    """Issue 16 (b): wait -1 everywhere: default cleaning drops every job; say so, offer a way."""
    spec = tmp_path / "c.toml"
    spec.write_text(SPEC)
    rows = []
    for i in range(1, 21):
        runtime = 0 if i % 5 == 0 else 60 * i
        # job submit wait runtime procs cpu mem req_procs req_time req_mem status user ...
        rows.append(f"{i} {i * 30} -1 {runtime} 1 -1 -1 1 3600 -1 1 1 1 1 1 1 -1 -1")
    swf = tmp_path / "w.swf"
    swf.write_text("; MaxProcs: 6\n" + "\n".join(rows) + "\n")
    base = ["simulate", "--trace", str(swf), "--cluster", str(spec), "--gpus-per-cpu", "1"]
    bad = CliRunner().invoke(cli, base)
    assert bad.exit_code == 2
    assert "dropped all 20 records" in bad.stderr and "--keep-unknown-wait" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout
    ok = CliRunner().invoke(cli, [*base, "--keep-unknown-wait", "--json"])
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.stdout)
    assert out["jobs"] == 16  # the 4 zero runtimes are still dropped
