#!/usr/bin/env python3
"""Replay speed of the simulator: jobs per second of the replay loop.

Usage: .venv/bin/python scripts/bench/sim_speed.py [--repeat 3]
       [--optsub [--limit 2000] [--full] [--exact]] [--auto] [--baseline SRC] [--skip-greedy]

Greedy policies on the whole traces (Alibaba on its cluster; KTH-SP2 on its own
100-node machine and, as GPU jobs, on the heterogeneous GPU cluster), best and
median of ``--repeat`` runs. ``--optsub`` adds the ``optsub`` policy (the live
ranking at every submission, issue 16's target: >= 1,000 jobs/s at any load)
on the first ``--limit`` jobs of the Alibaba trace on an eighth of its cluster
at loads x1, x100, x1000 and of KTH-SP2 on the heterogeneous GPU cluster at
loads x1 and x2; ``--full`` also on the whole traces (one run each).
``--auto`` times ``auto`` on the whole KTH (GPU) and Alibaba traces.

``--exact`` runs optsub also with ``incremental=False`` (the problem rebuilt
from the full snapshot at every submission) and says whether the outcomes
(start, end, partition of every job) are the same.

``--baseline SRC``: a source tree (a directory holding another version's
``slurmopt`` package, e.g. ``git archive <commit> slurmopt | tar -x -C SRC``)
run on the same cases in the same session, alternating with this one, so that
the ratio holds on a shared machine. Every run is a child process; the
figure is ``SimStats.wall_s`` (the event loop only, not trace reading or job
building); each line gives the 1-minute load average when it was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT.parent / "shared" / "traces"

_CHILD = r"""
import json, sys
from dataclasses import replace
from pathlib import Path
from slurmopt.clusterspec import load_spec
from slurmopt.sim.run import simulate
from slurmopt.sim.traces import Cleaning, read_alibaba_pods, read_swf
from slurmopt.sim.workload import as_gpu_jobs, scale_load
traces, specs, name, spec_name, policy, load, limit, options, interval = sys.argv[1:10]
swf = Path(traces) / "kth_sp2_swf" / "KTH-SP2-1996-2.1-cln.swf"
if name == "alibaba":
    trace = read_alibaba_pods(Path(traces) / "alibaba_gpu_v2023" / "openb_pod_list_default.csv")
elif name == "kth-sp2":
    trace = read_swf(swf, cleaning=Cleaning.none())
else:
    trace = as_gpu_jobs(read_swf(swf))
if int(limit) > 0:
    trace = replace(trace, jobs=trace.jobs[: int(limit)])
if float(load) != 1.0:
    trace = scale_load(trace, float(load))
opts = json.loads(options)
r = simulate(trace, load_spec(Path(specs) / spec_name), policy, policy_options=opts or None,
             controller_interval=int(interval) or None)
digest = hash(tuple((o.job_id, o.start, o.finish, o.partition) for o in r.outcomes))
print(json.dumps({"jobs": len(r.outcomes), "wall_s": r.stats.wall_s, "digest": digest,
                  "jobs_per_s": r.jobs_per_second, "extra": r.stats.extra}))
"""

GREEDY = [
    ("alibaba", "alibaba-gpu-2023.toml", "slurm-multi"),
    ("alibaba", "alibaba-gpu-2023.toml", "least-loaded"),
    ("alibaba", "alibaba-gpu-2023.toml", "est-completion"),
    ("kth-sp2", "kth-sp2.toml", "slurm-multi"),
    ("kth-gpu", "kth-sp2-hetero.toml", "slurm-multi"),
    ("kth-gpu", "kth-sp2-hetero.toml", "least-loaded"),
]
OPTSUB = [
    ("alibaba", "alibaba-gpu-2023-eighth.toml", 1.0),
    ("alibaba", "alibaba-gpu-2023-eighth.toml", 100.0),
    ("alibaba", "alibaba-gpu-2023-eighth.toml", 1000.0),
    ("kth-gpu", "kth-sp2-hetero.toml", 1.0),
    ("kth-gpu", "kth-sp2-hetero.toml", 2.0),
]
AUTO = [
    ("kth-gpu", "kth-sp2-hetero.toml", 3600),
    ("alibaba", "alibaba-gpu-2023.toml", 60),
]
"""``auto`` (optsub at submission, the controller's re-plan every so many seconds),
as in ``docs/evaluation.md``'s speed table."""
SLOW_BASELINE = {("alibaba", 1000.0, 0)}
"""Cases the session-start code took 20 minutes for (not re-run as a baseline)."""


def run(
    src: Path,
    name: str,
    spec: str,
    policy: str,
    load: float,
    limit: int,
    options: dict | None = None,
    interval: int = 0,
) -> dict:
    """One replay in a child process importing ``slurmopt`` from ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0")
    argv = [str(TRACES), str(ROOT / "etc" / "clusters"), name, spec, policy, str(load), str(limit)]
    argv += [json.dumps(options or {}), str(interval)]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=src,
    )
    got: dict = json.loads(out.stdout.strip().splitlines()[-1])
    got["load1"] = os.getloadavg()[0]
    return got


def _fmt(runs: list[dict]) -> str:
    rates = [r["jobs_per_s"] for r in runs]
    loads = ", ".join(f"{r['load1']:.1f}" for r in runs)
    return f"{max(rates):,.0f} | {statistics.median(rates):,.0f} | {loads}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--optsub", action="store_true", help="also time the optsub policy")
    ap.add_argument("--limit", type=int, default=2000, help="jobs per optsub replay")
    ap.add_argument("--full", action="store_true", help="optsub on the whole traces too")
    ap.add_argument("--baseline", type=Path, help="source tree of the version to compare with")
    ap.add_argument("--skip-greedy", action="store_true")
    ap.add_argument("--auto", action="store_true", help="also time auto on the whole traces")
    ap.add_argument(
        "--exact",
        action="store_true",
        help="optsub also with incremental=False (rebuild at every submission): same outcomes?",
    )
    args = ap.parse_args()
    base = args.baseline.resolve() if args.baseline else None
    versions = [("this", ROOT)] + ([("baseline", base)] if base else [])
    if not args.skip_greedy:
        print("| trace | cluster | policy | version | jobs | best jobs/s | median jobs/s | load |")
        print("|---|---|---|---|---:|---:|---:|---|")
        for name, spec, policy in GREEDY:
            runs: dict[str, list[dict]] = {v: [] for v, _ in versions}
            for _ in range(args.repeat):
                for v, src in versions:
                    runs[v].append(run(src, name, spec, policy, 1.0, 0))
            for v, _ in versions:
                n = runs[v][0]["jobs"]
                print(f"| {name} | {spec} | {policy} | {v} | {n:,} | {_fmt(runs[v])} |")
            if base:
                ratio = statistics.median(r["jobs_per_s"] for r in runs["this"]) / max(
                    1e-9, statistics.median(r["jobs_per_s"] for r in runs["baseline"])
                )
                print(f"| {name} | {spec} | {policy} | ratio (medians) | | | {ratio:.2f} | |")
            sys.stdout.flush()
    if args.optsub:
        if args.exact:
            versions.append(("this, incremental=False", ROOT))
        _optsub(versions, [args.limit] + ([0] if args.full else []))
    if args.auto:
        _auto([v for v in versions if not v[0].endswith("incremental=False")])


def _auto(versions: list[tuple[str, Path]]) -> None:
    print()
    print(
        "| trace | cluster | re-plan every | jobs | version | jobs/s | wall s | re-plans | load |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|---|")
    for name, spec, interval in AUTO:
        for v, src in versions:
            r = run(src, name, spec, "auto", 1.0, 0, None, interval)
            print(
                f"| {name} | {spec} | {interval} s | {r['jobs']:,} | {v} | "
                f"{r['jobs_per_s']:,.0f} | {r['wall_s']:.1f} | "
                f"{r['extra'].get('controller_plans', 0):,.0f} | {r['load1']:.1f} |",
                flush=True,
            )


def _optsub(versions: list[tuple[str, Path]], limits: list[int]) -> None:
    print()
    print("| trace | cluster | load | jobs | version | jobs/s | wall s | rankings | kept | load |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---|")
    for limit in limits:
        for name, spec, load in OPTSUB:
            for v, src in versions:
                if v != "this" and (name, load, limit) in SLOW_BASELINE:
                    continue
                opts = {"incremental": False} if v.endswith("incremental=False") else None
                r = run(src, name, spec, "optsub", load, limit, opts)
                ex = r["extra"]
                label = v
                if v == "this":
                    digest = r["digest"]
                elif opts:
                    label += " (same outcomes)" if r["digest"] == digest else " (OUTCOMES DIFFER)"
                print(
                    f"| {name} | {spec} | x{load:g} | {r['jobs']:,} | {label} | "
                    f"{r['jobs_per_s']:,.0f} | {r['wall_s']:.1f} | "
                    f"{ex.get('submit_rankings', 0):,.0f} | "
                    f"{ex.get('kept_schedule_rankings', 0):,.0f} | {r['load1']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
