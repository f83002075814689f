#!/usr/bin/env python3
"""optsub's overhead over sbatch for several commits, in one run (paired, same load).

Usage (testbed up, ``eval "$(scripts/testbed env)"``)::

    .venv/bin/python scripts/bench/optsub_compare.py [--runs 40] REF [REF ...]

Each REF (a commit of this repository) is checked out in a temporary worktree
and installed the regular way into its own fresh virtual environment (as
``optsub_overhead.py`` does); each gets a state cache written by its own code
(the model's format changes between commits), rewritten every 30 s. Then the
benchmark's held job is submitted with ``sbatch`` and with every install's
``optsub``, in turn, ``--runs`` times (the order reversed on odd runs). Prints
per command the median / p95 wall time, the median CPU time (the process and
the ``squeue``/``sbatch`` it waits for), and the median / p95 of the paired
differences to ``sbatch`` of the same round; every job is cancelled at the end.
"""

from __future__ import annotations

import argparse
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
ARGS = ["--hold", "-p", "a100,h100", "--gres=gpu:a100:1", "-J", "bench"]
WRITE_CACHE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from slurmopt.controller.cycle import write_state_cache
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm.backend import get_backend
write_state_cache(get_backend().snapshot(), OptimizeConfig(), Path(sys.argv[2]), {})
"""


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def install(ref: str, tmp: Path) -> tuple[Path, Path]:
    """Checkout of ``ref`` and the optsub of its regular install."""
    src = tmp / f"src-{ref}"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(src), ref],
        check=True,
        capture_output=True,
        timeout=120,
    )
    venv = tmp / f"venv-{ref}"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return src, venv / "bin" / "optsub"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("refs", nargs="+")
    ap.add_argument("--runs", type=int, default=40)
    ns = ap.parse_args()
    if not os.environ.get("SLURM_CONF"):
        print('set SLURM_CONF first: eval "$(scripts/testbed env)"', file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURMOPT_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    ids: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        job = tmp / "job.sh"
        job.write_text("#!/bin/sh\n#SBATCH -t 5\ntrue\n")
        names = ["sbatch"]
        cmds = [["sbatch", *ARGS, str(job)]]
        envs = [env]
        srcs = []
        try:
            for ref in ns.refs:
                src, optsub = install(ref, tmp)
                srcs.append(src)
                (tmp / f"spool-{ref}").mkdir()
                names.append(ref)
                cmds.append([str(optsub), *ARGS, str(job)])
                envs.append(
                    env
                    | {
                        "SLURMOPT_STATE_CACHE": str(tmp / f"cache-{ref}.json"),
                        "SLURMOPT_SPOOL_DIR": str(tmp / f"spool-{ref}"),
                    }
                )

            def refresh() -> None:
                for src, e in zip(srcs, envs[1:], strict=True):
                    subprocess.run(
                        [sys.executable, "-c", WRITE_CACHE, str(src), e["SLURMOPT_STATE_CACHE"]],
                        check=True,
                        timeout=120,
                    )

            wall: list[list[float]] = [[] for _ in cmds]
            cpu: list[list[float]] = [[] for _ in cmds]
            load0 = os.getloadavg()
            refresh()
            last = time.time()
            for i in range(ns.runs):
                if time.time() - last > 30:
                    refresh()
                    last = time.time()
                order = list(range(len(cmds)))
                if i % 2:
                    order.reverse()
                for k in order:
                    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t0 = time.perf_counter()
                    r = subprocess.run(
                        cmds[k],
                        env=envs[k],
                        capture_output=True,
                        text=True,
                        timeout=120,
                        check=False,
                    )
                    wall[k].append(1000 * (time.perf_counter() - t0))
                    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu[k].append(1000 * (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime))
                    if r.returncode != 0 or r.stderr:
                        raise SystemExit(f"{names[k]}: rc {r.returncode}: {r.stderr}")
                    m = re.search(r"\d+", r.stdout)
                    assert m, r.stdout
                    ids.append(m.group(0))
            load1 = os.getloadavg()
        finally:
            for k in range(0, len(ids), 200):
                subprocess.run(["scancel", *ids[k : k + 200]], timeout=60, check=False)
            for src in srcs:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(src)],
                    timeout=60,
                    check=False,
                )
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f}; {ns.runs} rounds")
    print(
        "| command | wall median / p95 (ms) | CPU median (ms) "
        "| paired diff to sbatch median / p95 (ms) |"
    )
    print("|---|---|---|---|")
    for k, name in enumerate(names):
        diff = [a - b for a, b in zip(wall[k], wall[0], strict=True)]
        print(
            f"| {name} | {statistics.median(wall[k]):.1f} / {p95(wall[k]):.1f} "
            f"| {statistics.median(cpu[k]):.1f} "
            f"| {statistics.median(diff):.1f} / {p95(diff):.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
