#!/usr/bin/env python3
"""What the accounting reads cost a live snapshot (issue 14): ``CliBackend.snapshot()``
with its QOS limits / associations reads (``sacctmgr``) and without them, alternated
round by round on the running Slurm (``SLURM_CONF``), medians and minima in ms.

Usage: eval "$(scripts/testbed env)"; .venv/bin/python scripts/bench/snapshot_accounting.py
       [--rounds 10] [--restrict]   (--restrict: h100 AllowAccounts=ml for the run, so
                                     that the associations are read too; undone after)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from slurmopt.slurm.backend import CliBackend


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--restrict", action="store_true")
    args = ap.parse_args()
    if args.restrict:
        subprocess.run(["scontrol", "update", "PartitionName=h100", "AllowAccounts=ml"], check=True)
    try:
        backend = CliBackend(timeout=30)
        snap = backend.snapshot()
        real = CliBackend._accounting_rules
        real_start = CliBackend._start_accounting_reads
        with_, without = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            backend.snapshot()
            with_.append(time.perf_counter() - t)
            CliBackend._accounting_rules = lambda self, parts, early=None: ((), ())  # type: ignore[method-assign]
            CliBackend._start_accounting_reads = lambda self: None  # type: ignore[method-assign]
            t = time.perf_counter()
            backend.snapshot()
            without.append(time.perf_counter() - t)
            CliBackend._accounting_rules = real  # type: ignore[method-assign]
            CliBackend._start_accounting_reads = real_start  # type: ignore[method-assign]
    finally:
        if args.restrict:
            subprocess.run(
                ["scontrol", "update", "PartitionName=h100", "AllowAccounts=ALL"], check=False
            )
    ms = 1e3
    print(
        f"Slurm {snap.slurm_version}, {args.rounds} rounds, QOS read {len(snap.qos)}, "
        f"associations read {len(snap.associations)}: with accounting reads median "
        f"{statistics.median(with_) * ms:.0f} ms (min {min(with_) * ms:.0f}), without "
        f"{statistics.median(without) * ms:.0f} ms (min {min(without) * ms:.0f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
