#!/usr/bin/env python3
"""Regenerate docs/evaluation.md: conformance, fidelity, the policy table, speed.

Usage: scripts/evaluate [--jobs 2] [--quick] [--skip-opt] [--out docs/evaluation.md]

Every figure in the generated document comes from this run; the raw results
are written next to it as JSON (``--json``, default build/evaluation.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from slurmopt.clusterspec import load_spec
from slurmopt.sim.metrics import Metrics, recorded_outcomes, summarize
from slurmopt.sim.run import simulate
from slurmopt.sim.traces import Cleaning, Trace, read_alibaba_pods, read_swf
from slurmopt.sim.workload import as_gpu_jobs, scale_load

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_evaluate_render import render_doc

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
KTH = SHARED / "traces" / "kth_sp2_swf" / "KTH-SP2-1996-2.1-cln.swf"
ALI = SHARED / "traces" / "alibaba_gpu_v2023" / "openb_pod_list_default.csv"
SPECS = ROOT / "etc" / "clusters"

BASELINES = [
    "as-submitted",
    "slurm-multi",
    "slurm-multi-fast",
    "round-robin",
    "least-loaded",
    "hash",
]
GREEDY = ["est-completion"]
OPT = ["optsub", "auto", "ga", "sa"]

# (trace, spec, load, optimizer policies run there, controller interval)
CASES: list[tuple[str, str, float, list[str], int]] = [
    ("alibaba", "alibaba-gpu-2023.toml", 1.0, ["optsub", "auto", "ga", "sa"], 60),
    ("alibaba", "alibaba-gpu-2023.toml", 10000.0, ["auto"], 60),
    ("alibaba", "alibaba-gpu-2023-eighth.toml", 100.0, ["optsub", "auto"], 60),
    # x1000: optsub alone took 873 s (long queues: every submission list-schedules
    # the queue ahead); auto's re-plans on top would take longer still
    ("alibaba", "alibaba-gpu-2023-eighth.toml", 1000.0, ["optsub"], 60),
    ("kth-gpu", "kth-sp2-hetero.toml", 1.0, ["optsub", "auto", "ga", "sa"], 3600),
    ("kth-gpu", "kth-sp2-hetero.toml", 2.0, ["optsub", "auto"], 3600),
    # the same cluster with its partitions listed fastest GPU first (issue 16)
    ("kth-gpu", "kth-sp2-hetero-fastfirst.toml", 1.0, ["optsub", "auto"], 3600),
    ("kth-gpu", "kth-sp2-hetero-fastfirst.toml", 2.0, ["optsub", "auto"], 3600),
]

_TRACES: dict[tuple[str, int | None], Trace] = {}


def load_trace(name: str, limit: int | None = None) -> Trace:
    key = (name, limit)
    if key not in _TRACES:
        if name == "alibaba":
            tr = read_alibaba_pods(ALI)
        elif name == "kth-gpu":
            tr = as_gpu_jobs(read_swf(KTH))
        elif name == "kth-raw":
            tr = read_swf(KTH, cleaning=Cleaning.none())
        else:
            raise ValueError(name)
        if limit is not None:
            tr = replace(tr, jobs=tr.jobs[:limit])
        _TRACES[key] = tr
    return _TRACES[key]


def run_case(args: tuple[str, str, float, str, int | None, int | None]) -> dict[str, Any]:
    trace_name, spec_name, load, policy, interval, limit = args
    tr = load_trace(trace_name, limit)
    if load != 1.0:
        tr = scale_load(tr, load)
    spec = load_spec(SPECS / spec_name)
    t = time.perf_counter()
    res = simulate(tr, spec, policy, seed=0, controller_interval=interval)
    wall = time.perf_counter() - t
    span = max(o.finish for o in res.outcomes) - min(o.submit for o in res.outcomes)
    return {
        "trace": trace_name,
        "spec": spec_name,
        "load": load,
        "policy": policy,
        "interval": interval,
        "limit": limit,
        "wall_s": wall,
        "simulated_s": span,
        "result": res.to_dict(),
        "class_p95_jct": {k: v.jct.p95 for k, v in res.by_class.items()},
        "class_jobs": {k: v.jobs for k, v in res.by_class.items()},
    }


def conformance() -> tuple[list[str], dict[str, Any]]:
    tr = load_trace("kth-raw")
    t = time.perf_counter()
    m = summarize(recorded_outcomes(tr), total_cpus=100)
    wall = time.perf_counter() - t
    rows = [
        ("mean wait (h)", 4.275, m.wait.mean / 3600),
        ("mean bounded slowdown", 193.8, m.bounded_slowdown.mean),
    ]
    lines = [
        "| metric | published | computed here | relative error |",
        "|---|---:|---:|---:|",
    ]
    for name, ref, got in rows:
        lines.append(f"| {name} | {ref} | {got:.4f} | {abs(got - ref) / ref * 100:.3f} % |")
    lines.append("")
    lines.append(
        f"All {len(tr.jobs):,} records ({tr.records:,} in the file, none dropped: "
        f"`Cleaning.none()`); metric code `slurmopt.sim.metrics.summarize` ({wall:.2f} s). "
        f"Recorded utilization of the 100 processors: {m.utilization:.3f}; "
        f"median wait {m.wait.median / 3600:.3f} h, p95 wait {m.wait.p95 / 3600:.2f} h."
    )
    return lines, {"recorded": m.to_dict()}


def fidelity() -> tuple[list[str], dict[str, Any]]:
    tr = load_trace("kth-raw")
    rec = summarize(recorded_outcomes(tr), total_cpus=100)
    spec = load_spec(SPECS / "kth-sp2.toml")
    sim = simulate(tr, spec, "slurm-multi")
    clean = simulate(read_swf(KTH), spec, "slurm-multi")
    over = sum(1 for j in tr.jobs if j.requested_time is not None and j.runtime > j.requested_time)

    def row(name: str, m: Metrics) -> str:
        return (
            f"| {name} | {m.jobs:,} | {m.wait.mean / 3600:.3f} | {m.wait.median / 3600:.3f} | "
            f"{m.wait.p95 / 3600:.2f} | {m.bounded_slowdown.mean:.1f} | {m.utilization:.3f} | "
            f"{m.makespan / 86400:.1f} |"
        )

    lines = [
        "| run | jobs | mean wait (h) | median wait (h) | p95 wait (h) | mean bsld | "
        "utilization | makespan (days) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        row("recorded (KTH's own EASY scheduler)", rec),
        row("simulated FIFO + EASY, all records", sim.metrics),
        row("simulated FIFO + EASY, default cleaning", clean.metrics),
        "",
        f"Simulated on `etc/clusters/kth-sp2.toml` (100 nodes x 1 processor), estimates = "
        f"the requested times (field 9); replay {sim.stats.wall_s:.2f} s, "
        f"{sim.stats.backfilled:,} jobs backfilled. {over} jobs ran longer than they requested "
        f"and are replayed with their recorded runtime.",
    ]
    return lines, {"simulated": sim.to_dict(), "cleaned": clean.to_dict(), "over_request": over}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=2, help="parallel replays")
    ap.add_argument("--quick", action="store_true", help="first 1500 jobs of each trace")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "evaluation.md")
    ap.add_argument("--json", type=Path, default=ROOT / "build" / "evaluation.json")
    ap.add_argument("--skip-opt", action="store_true", help="no optimizer policies")
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="no replay: re-render --out from --json (a full run's), with the current docs/e2e",
    )
    args = ap.parse_args()
    if args.render_only:
        saved = json.loads(args.json.read_text())
        if "meta" not in saved:
            raise SystemExit(f"{args.json} has no rendering data: run scripts/evaluate in full")
        args.out.write_text(
            render_doc(
                saved["markdown"]["conformance"],
                saved["markdown"]["fidelity"],
                saved["runs"],
                saved["speed"],
                saved["meta"],
                e2e_runs(),
            )
        )
        print(f"re-rendered {args.out} from {args.json}")
        return
    limit = 1500 if args.quick else None
    started = time.perf_counter()
    conf_lines, conf = conformance()
    fid_lines, fid = fidelity()
    work: list[tuple[str, str, float, str, int | None, int | None]] = []
    for trace, spec, load, opt, interval in CASES:
        for pol in BASELINES + GREEDY:
            work.append((trace, spec, load, pol, None, limit))
        if not args.skip_opt:
            for pol in opt:
                work.append((trace, spec, load, pol, None if pol == "optsub" else interval, limit))
    # longest first, so two workers finish together
    work.sort(key=lambda w: (w[3] not in OPT, w[0] != "alibaba"))
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        results = list(ex.map(run_case, work))
    speed = speed_runs(limit)
    total = time.perf_counter() - started
    meta = _meta(total, args)
    doc = render_doc(conf_lines, fid_lines, results, speed, meta, e2e_runs())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(doc)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "conformance": conf,
                "fidelity": fid,
                "runs": results,
                "speed": speed,
                "meta": meta,
                "markdown": {"conformance": conf_lines, "fidelity": fid_lines},
            },
            indent=1,
        )
    )
    print(f"wrote {args.out} and {args.json} in {total:.0f} s")


def speed_runs(limit: int | None) -> list[dict[str, Any]]:
    """Serial replays for the speed section (nothing else of this script runs meanwhile)."""
    out = []
    for trace, spec, pol in (
        ("alibaba", "alibaba-gpu-2023.toml", "slurm-multi"),
        ("alibaba", "alibaba-gpu-2023.toml", "least-loaded"),
        ("kth-raw", "kth-sp2.toml", "slurm-multi"),
        ("kth-gpu", "kth-sp2-hetero.toml", "slurm-multi"),
    ):
        r = run_case((trace, spec, 1.0, pol, None, limit))
        out.append(r)
    return out


def _git() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=ROOT,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _meta(total: float, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
        "quick": args.quick,
        "total_s": total,
        "argv": " ".join(sys.argv[1:]),
    }


def e2e_runs() -> list[dict[str, Any]]:
    """The saved real-Slurm comparisons (``scripts/e2e-compare --out docs/e2e/NAME.json``)."""
    out = []
    for path in sorted((ROOT / "docs" / "e2e").glob("*.json")):
        doc = json.loads(path.read_text())
        doc["name"] = path.stem
        out.append(doc)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
