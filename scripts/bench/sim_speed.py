#!/usr/bin/env python3
"""Replay speed of the simulator: jobs per second of the replay loop, best of N runs.

Usage: .venv/bin/python scripts/bench/sim_speed.py [--repeat 3] [--optsub [--limit 2000]]

``--optsub`` adds the ``optsub`` policy (the live ranking at every submission,
issue 16's target: >= 1,000 jobs/s at any load) on the first ``--limit`` jobs
of the Alibaba trace on an eighth of its cluster at loads x1, x100, x1000 and
of KTH-SP2 on the heterogeneous GPU cluster at loads x1 and x2 (one run each).

The machine may be shared: the best of ``--repeat`` runs is reported next to
the median, both from ``SimStats.wall_s`` (the event loop only, not trace
reading or job building).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

from slurmopt.clusterspec import load_spec
from slurmopt.sim.run import simulate
from slurmopt.sim.traces import Cleaning, Trace, read_alibaba_pods, read_swf
from slurmopt.sim.workload import as_gpu_jobs, scale_load

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT.parent / "shared" / "traces"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--optsub", action="store_true", help="also time the optsub policy")
    ap.add_argument("--limit", type=int, default=2000, help="jobs per optsub replay")
    args = ap.parse_args()
    kth = read_swf(TRACES / "kth_sp2_swf" / "KTH-SP2-1996-2.1-cln.swf", cleaning=Cleaning.none())
    ali = read_alibaba_pods(TRACES / "alibaba_gpu_v2023" / "openb_pod_list_default.csv")
    cases = [
        ("alibaba", ali, "alibaba-gpu-2023.toml", "slurm-multi"),
        ("alibaba", ali, "alibaba-gpu-2023.toml", "least-loaded"),
        ("alibaba", ali, "alibaba-gpu-2023.toml", "est-completion"),
        ("kth-sp2", kth, "kth-sp2.toml", "slurm-multi"),
        ("kth-gpu", as_gpu_jobs(read_swf(TRACES / "kth_sp2_swf" / "KTH-SP2-1996-2.1-cln.swf")),
         "kth-sp2-hetero.toml", "least-loaded"),
    ]  # fmt: skip
    print("| trace | cluster | policy | jobs | best jobs/s | median jobs/s |")
    print("|---|---|---|---:|---:|---:|")
    for name, trace, spec_name, policy in cases:
        spec = load_spec(ROOT / "etc" / "clusters" / spec_name)
        rates = []
        n = 0
        for _ in range(args.repeat):
            r = simulate(trace, spec, policy)
            n = len(r.outcomes)
            rates.append(r.jobs_per_second)
        print(
            f"| {name} | {spec_name} | {policy} | {n:,} | {max(rates):,.0f} | "
            f"{statistics.median(rates):,.0f} |"
        )
    if args.optsub:
        _optsub(ali, args.limit)


def _optsub(ali: Trace, limit: int) -> None:
    kth = as_gpu_jobs(read_swf(TRACES / "kth_sp2_swf" / "KTH-SP2-1996-2.1-cln.swf"))
    cases = [
        ("alibaba", ali, "alibaba-gpu-2023-eighth.toml", 1.0),
        ("alibaba", ali, "alibaba-gpu-2023-eighth.toml", 100.0),
        ("alibaba", ali, "alibaba-gpu-2023-eighth.toml", 1000.0),
        ("kth-gpu", kth, "kth-sp2-hetero.toml", 1.0),
        ("kth-gpu", kth, "kth-sp2-hetero.toml", 2.0),
    ]
    print()
    print("| trace | cluster | policy | load | jobs | jobs/s | rankings | shortcut |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, trace, spec_name, load in cases:
        tr = scale_load(replace(trace, jobs=trace.jobs[:limit]), load)
        r = simulate(tr, load_spec(ROOT / "etc" / "clusters" / spec_name), "optsub")
        ex = r.stats.extra
        print(
            f"| {name} | {spec_name} | optsub | x{load:g} | {len(r.outcomes):,} | "
            f"{r.jobs_per_second:,.0f} | {ex.get('submit_rankings', 0):,.0f} | "
            f"{ex.get('shortcut_decisions', 0):,.0f} |"
        )


if __name__ == "__main__":
    main()
