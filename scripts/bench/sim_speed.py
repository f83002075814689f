#!/usr/bin/env python3
"""Replay speed of the simulator: jobs per second of the replay loop, best of N runs.

Usage: .venv/bin/python scripts/bench/sim_speed.py [--repeat 3]

The machine may be shared: the best of ``--repeat`` runs is reported next to
the median, both from ``SimStats.wall_s`` (the event loop only, not trace
reading or job building).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from slurmopt.clusterspec import load_spec
from slurmopt.sim.run import simulate
from slurmopt.sim.traces import Cleaning, read_alibaba_pods, read_swf
from slurmopt.sim.workload import as_gpu_jobs

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT.parent / "shared" / "traces"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
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


if __name__ == "__main__":
    main()
