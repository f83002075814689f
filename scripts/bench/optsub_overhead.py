#!/usr/bin/env python3
"""optsub's overhead over plain sbatch, on the local testbed.

Usage (testbed up, SLURM_CONF set, e.g. ``eval "$(scripts/testbed env)"``)::

    .venv/bin/python scripts/bench/optsub_overhead.py [--runs 50] [--modes cache,live]
                     [--queue 5000] [--editable] [--json out.json]

optsub is measured as users get it: a **regular, non-editable install** of this
checkout into a fresh virtual environment (``python3 -m venv --without-pip``,
then this venv's ``pip --python NEW install --no-deps .``, which byte-compiles
it); ``--editable`` measures this venv's editable install instead (its import
hook costs about 15 ms more per start).

For each mode it submits the same held job ``--runs`` times with sbatch and
``--runs`` times with optsub, alternating (sbatch first on even runs, optsub
first on odd ones), and times each whole command (process start to exit) with
``time.perf_counter``. Every job is held and cancelled at the end. Prints
median / p95 wall time of each, the overhead (optsub - sbatch) of the medians
and of the p95s, and the median / p95 of the paired differences; and the CPU
time (user + system, the command and the children it waited for: squeue,
sbatch) of each, which a loaded shared machine inflates much less than wall
time (on an idle machine wall time is about CPU time plus slurmctld's answer
times). Modes:

* ``cache``: a fresh controller state cache (written as the controller writes
  it, rewritten every 30 s) and the default configuration (live refresh: one
  ``squeue``);
* ``cache-norefresh``: the same with ``[optsub] live_refresh = false`` (the
  cost of the refresh is the difference);
* ``live``: no cache, optsub reads Slurm itself;
* ``queue``: ``--queue N`` (default 5000) real pending jobs in the queue first
  (every node taken by a blocker job, so they wait for resources, neither held
  nor deferred), then as ``cache`` (the cache then carries the queue digest).

PYTHONDONTWRITEBYTECODE is dropped for the timed runs, as in an installed package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

OPTSUB = str(Path(sys.executable).with_name("optsub"))


def install(tmp: Path) -> str:
    """A regular (non-editable) install of this checkout in a fresh venv; its optsub."""
    venv = tmp / "venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            str(REPO),
        ],
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )
    return str(venv / "bin" / "optsub")


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


CPU: dict[str, list[float]] = {"sbatch": [], "optsub": []}
"""CPU seconds (user + system) of each timed command and the children it waited for."""


def timed(argv: list[str], env: dict[str, str], name: str = "") -> tuple[float, int]:
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    dt = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if name:
        CPU.setdefault(name, []).append(ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime)
    if r.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {r.stderr}")
    if r.stderr:
        print(f"warning from {Path(argv[0]).name}: {r.stderr.strip()}", file=sys.stderr)
    m = re.search(r"(\d+)", r.stdout)
    assert m, r.stdout
    return dt, int(m.group(1))


def refresh_cache(path: Path) -> None:
    """Write the state cache as the controller does (its own output step)."""
    from slurmopt.controller.cycle import write_state_cache
    from slurmopt.optimize.config import OptimizeConfig
    from slurmopt.slurm.backend import get_backend

    write_state_cache(get_backend().snapshot(), OptimizeConfig(), path, {})


def fill_queue(n: int, tmp: Path, ids: list[int]) -> None:
    """``n`` real pending jobs: every node is taken by a blocker job first, so that they
    wait for resources (reason Resources / Priority), neither held nor deferred."""
    script = tmp / "wait.sh"
    script.write_text("#!/bin/sh\nsleep 3600\n")
    rows = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %P"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split("\n")
    node_part: dict[str, str] = {}
    for row in rows:
        if row.strip():
            node, part = row.split()
            node_part.setdefault(node, part.rstrip("*"))
    for node, part in sorted(node_part.items()):
        r = subprocess.run(
            [
                "sbatch",
                "--parsable",
                "-p",
                part,
                "-w",
                node,
                "--exclusive",
                "-t",
                "60",
                "-J",
                "bench-block",
                "-o",
                "/dev/null",
                str(script),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        ids.append(int(r.stdout.strip().split(";")[0]))
    parts = ["h100", "a100", "v100", "t4", "a100,h100", "v100,a100"]
    for i in range(n):
        argv = [
            "sbatch",
            "--parsable",
            "-p",
            parts[i % len(parts)],
            f"--gpus-per-node={1 + i % 4}",
            "-t",
            "60",
            "-J",
            "bench-queue",
            "-o",
            "/dev/null",
            str(script),
        ]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        ids.append(int(r.stdout.strip().split(";")[0]))


def run_mode(mode: str, runs: int, tmp: Path, ids: list[int], optsub: str) -> dict[str, object]:
    script = tmp / "job.sh"
    script.write_text("#!/bin/sh\n#SBATCH -t 5\ntrue\n")
    args = ["--hold", "-p", "a100,h100", "--gres=gpu:a100:1", "-J", "bench", str(script)]
    cache = tmp / f"cache-{mode}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURMOPT_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte-compiled modules
    env |= {"SLURMOPT_SPOOL_DIR": str(tmp / mode), "SLURMOPT_STATE_CACHE": str(cache)}
    (tmp / mode).mkdir()
    if mode == "cache-norefresh":
        conf = tmp / "norefresh.toml"
        conf.write_text("[optsub]\nlive_refresh = false\n")
        env["SLURMOPT_CONFIG"] = str(conf)
    cached = mode != "live"
    if cached:
        refresh_cache(cache)
    sb: list[float] = []
    op: list[float] = []
    CPU["sbatch"], CPU["optsub"] = [], []
    last = time.time()
    for i in range(runs):
        if cached and time.time() - last > 30:
            refresh_cache(cache)  # as the controller would, well within the 120 s max age
            last = time.time()
        order = [("sbatch", ["sbatch", *args]), ("optsub", [optsub, *args])]
        if i % 2:
            order.reverse()
        for name, argv in order:
            dt, jid = timed(argv, env, name)
            ids.append(jid)
            (sb if name == "sbatch" else op).append(dt)
    diffs = [o - s for o, s in zip(op, sb, strict=True)]
    ms = 1000.0
    return {
        "mode": mode,
        "runs": runs,
        "sbatch_median_ms": statistics.median(sb) * ms,
        "sbatch_p95_ms": p95(sb) * ms,
        "optsub_median_ms": statistics.median(op) * ms,
        "optsub_p95_ms": p95(op) * ms,
        "overhead_median_ms": (statistics.median(op) - statistics.median(sb)) * ms,
        "overhead_p95_ms": (p95(op) - p95(sb)) * ms,
        "paired_diff_median_ms": statistics.median(diffs) * ms,
        "paired_diff_p95_ms": p95(diffs) * ms,
        "sbatch_cpu_median_ms": statistics.median(CPU["sbatch"]) * ms,
        "optsub_cpu_median_ms": statistics.median(CPU["optsub"]) * ms,
        "optsub_cpu_p95_ms": p95(CPU["optsub"]) * ms,
        "cpu_overhead_median_ms": (
            statistics.median(CPU["optsub"]) - statistics.median(CPU["sbatch"])
        )
        * ms,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--modes", default="cache,cache-norefresh,live")
    ap.add_argument("--queue", type=int, default=5000, help="pending jobs for mode 'queue'")
    ap.add_argument("--editable", action="store_true", help="time this venv's optsub")
    ap.add_argument("--json", type=Path)
    ns = ap.parse_args()
    if not os.environ.get("SLURM_CONF"):
        print('set SLURM_CONF first: eval "$(scripts/testbed env)"', file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "slurmopt")],
        env=env,
        check=True,
        timeout=300,
        stdout=subprocess.DEVNULL,
    )
    ids: list[int] = []
    results = []
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        optsub = OPTSUB if ns.editable else install(Path(d))
        py_exe = str(Path(optsub).with_name("python"))
        try:
            for mode in ns.modes.split(","):
                if mode == "queue":
                    fill_queue(ns.queue, Path(d), ids)
                results.append(run_mode(mode, ns.runs, Path(d), ids, optsub))
        finally:
            for k in range(0, len(ids), 100):
                subprocess.run(["scancel", *map(str, ids[k : k + 100])], timeout=60, check=False)
        bare = []
        for _ in range(20):
            t0 = time.perf_counter()
            subprocess.run([py_exe, "-c", "pass"], check=True, timeout=60)
            bare.append(time.perf_counter() - t0)
        py = {
            "mode": "python -c pass",
            "median_ms": statistics.median(bare) * 1000.0,
            "p95_ms": p95(bare) * 1000.0,
            "install": "editable (this venv)" if ns.editable else "regular (fresh venv)",
        }
    load = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(
        f"python -c pass (optsub's venv): median {py['median_ms']:.0f} ms, "
        f"p95 {py['p95_ms']:.0f} ms;"
        f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        "| mode | runs | sbatch median / p95 (ms) | optsub median / p95 (ms) "
        "| overhead median / p95 (ms) | paired diff median / p95 (ms) "
        "| CPU sbatch / optsub median (ms) | CPU overhead median (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['runs']} | {r['sbatch_median_ms']:.0f} / {r['sbatch_p95_ms']:.0f} "
            f"| {r['optsub_median_ms']:.0f} / {r['optsub_p95_ms']:.0f} "
            f"| {r['overhead_median_ms']:.0f} / {r['overhead_p95_ms']:.0f} "
            f"| {r['paired_diff_median_ms']:.0f} / {r['paired_diff_p95_ms']:.0f} "
            f"| {r['sbatch_cpu_median_ms']:.0f} / {r['optsub_cpu_median_ms']:.0f} "
            f"| {r['cpu_overhead_median_ms']:.0f} |"
        )
    if ns.json:
        doc = [*results, py, {"load_before": load0, "load_after": load}]
        ns.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
