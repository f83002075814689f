#!/usr/bin/env python3
"""Where one optsub submission spends its CPU time, by phase.

Usage (testbed up, a fresh state cache in ``$SLURMOPT_STATE_CACHE``): run it with
the Python of a regular install (``scripts/bench/optsub_overhead.py`` makes one)::

    VENV/bin/python scripts/bench/optsub_phases.py [--runs 7]

Each run is a fresh process doing what the console script does (GC off, the
benchmark's held job, exit with ``os._exit``), with ``time.process_time`` marks:
interpreter start (the CPU time at the first line), ``import
slurmopt.cli.optsub``, the decision (the rest of the imports, the state, the
ranking), the submission (sbatch, the job id, the record), and the CPU time of
the children it waited for (``squeue``, ``sbatch``). Prints the medians; the
held jobs are cancelled.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import time
T0 = time.process_time()
import gc, os, sys  # loaded by the interpreter already
gc.disable()
from slurmopt.cli import optsub as o
T1 = time.process_time()
marks = {}
prepare = o._prepare
def timed_prepare(*a, **k):
    marks["p0"] = time.process_time()
    try:
        return prepare(*a, **k)
    finally:
        marks["p1"] = time.process_time()
o._prepare = timed_prepare
rc = o.run(sys.argv[1:], dict(os.environ))
T2 = time.process_time()
import json, resource
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write("PHASES " + json.dumps({
    "interpreter start": T0, "import slurmopt.cli.optsub": T1 - T0,
    "decision (imports, state, ranking)": marks["p1"] - marks["p0"],
    "submission (sbatch, job id, record)": T2 - marks["p1"],
    "children (squeue, sbatch)": ch.ru_utime + ch.ru_stime}) + "\\n")
sys.stdout.flush()
os._exit(rc)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ns = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    acc: dict[str, list[float]] = {}
    ids: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        job = Path(d) / "job.sh"
        job.write_text("#!/bin/sh\n#SBATCH -t 5\ntrue\n")
        args = ["--hold", "-p", "a100,h100", "--gres=gpu:a100:1", "-J", "bench", str(job)]
        try:
            for _ in range(ns.runs):
                r = subprocess.run(
                    [sys.executable, "-c", CHILD, *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=True,
                )
                ids += r.stdout.split()[-1:]
                line = next(x for x in r.stderr.splitlines() if x.startswith("PHASES "))
                for k, v in json.loads(line[7:]).items():
                    acc.setdefault(k, []).append(v * 1000)
        finally:
            if ids:
                subprocess.run(["scancel", *ids], timeout=60, check=False)
    print(f"load average {os.getloadavg()[0]:.2f}; {ns.runs} runs; CPU ms, median")
    for k, v in acc.items():
        print(f"| {k} | {statistics.median(v):.1f} |")
    print(f"| total | {sum(statistics.median(v) for v in acc.values()):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
