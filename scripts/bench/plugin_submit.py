#!/usr/bin/env python3
"""Per-submission time of ``sbatch -p auto`` through plugins/job_submit.lua, per routing file.

Runs against the worktree's running testbed (``scripts/testbed up``; SLURM_CONF
and SLURMOPT_TESTBED_DIR from ``scripts/testbed env``). For each plugin given
(``--plugin PATH``, default: this checkout's; ``--plugin git:REV`` reads the
file at a git revision) it installs the plugin as the testbed does (SITE.routing_file
pointed at the testbed's routing file), then for each routing file case
(a small valid file; a well-formed 30 MB file) times ``--n`` held
``sbatch -H -p auto --gpus=1`` submissions, paired (plugin A, plugin B, A, B...
blocks of --n, --rounds times) to spread out the noise of a shared machine. Cancels every job and
puts the checkout's plugin back.

Usage: scripts/bench/plugin_submit.py [--n 10] [--rounds 2]
       [--plugin git:main --plugin plugins/job_submit.lua]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "lib"))
SITE_LINE = '  routing_file = "/var/lib/slurmopt/routing.txt",'


def plugin_text(spec: str, routing: Path) -> str:
    if spec.startswith("git:"):
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{spec[4:]}:plugins/job_submit.lua"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    else:
        text = Path(spec).read_text()
    return text.replace(SITE_LINE, f'  routing_file = "{routing}",')


def write_case(path: Path, case: str) -> None:
    now = int(time.time())
    head = f"format 1\ngenerated_at {now}\n"
    if case == "small":
        path.write_text(head + "route gpu h100,a100\nroute cpu cpu\n")
        return
    pad = ("# " + "x" * 1021 + "\n").encode()
    with path.open("wb") as fh:
        fh.write(head.encode())
        for _ in range(30 * 1024):
            fh.write(pad)
        fh.write(b"route gpu h100,a100\nroute cpu cpu\n")


def submit_once() -> tuple[float, int]:
    t0 = time.perf_counter()
    out = subprocess.run(
        ["sbatch", "--parsable", "-H", "-p", "auto", "--gpus=1", "-t", "1", "--wrap", "true"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return time.perf_counter() - t0, int(out.strip().split(";")[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="timed submissions per block")
    ap.add_argument("--rounds", type=int, default=2, help="blocks per plugin, interleaved")
    ap.add_argument("--plugin", action="append", default=[])
    ap.add_argument("--case", action="append", default=[], choices=["small", "30mb"])
    args = ap.parse_args()
    plugins = args.plugin or ["git:main", str(ROOT / "plugins" / "job_submit.lua")]
    cases = args.case or ["small", "30mb"]
    tb = Path(os.environ["SLURMOPT_TESTBED_DIR"])
    routing = tb / "routing.txt"
    installed = tb / "etc" / "job_submit.lua"
    original = installed.read_text()
    texts = {p: plugin_text(p, routing) for p in plugins}
    times: dict[str, dict[str, list[float]]] = {c: {p: [] for p in plugins} for c in cases}
    ids: list[int] = []
    try:
        for case in cases:
            write_case(routing, case)
            for _ in range(args.rounds):
                for p in plugins:
                    installed.write_text(texts[p])
                    # job_submit/lua reloads when the mtime (seconds) changes: wait a
                    # second, then one untimed call loads it
                    time.sleep(1.1)
                    ids.append(submit_once()[1])
                    for _ in range(args.n):
                        wall, jid = submit_once()
                        ids.append(jid)
                        times[case][p].append(wall)
    finally:
        installed.write_text(original)
        routing.unlink(missing_ok=True)
        for i in range(0, len(ids), 200):
            subprocess.run(["scancel", *map(str, ids[i : i + 200])], check=False)
    result = {
        c: {
            p: {
                "median_ms": round(statistics.median(v) * 1000, 1),
                "p90_ms": round(sorted(v)[int(0.9 * (len(v) - 1))] * 1000, 1),
                "n": len(v),
            }
            for p, v in per.items()
        }
        for c, per in times.items()
    }
    for c, per in result.items():
        for p, r in per.items():
            print(f"{c:6} {p:40} median {r['median_ms']:8.1f} ms  p90 {r['p90_ms']:8.1f} ms")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
