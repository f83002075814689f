#!/usr/bin/env python3
"""Controller cycle time and slurmctld load on a 64-node testbed with 2,000 pending jobs.

Brings up a separate testbed (``etc/testbed/large.toml`` in ``var/testbed-bench``,
its own ports), fills it with running blockers and 2,000 pending GPU jobs
(every one opted in through ``AdminComment``, allowed on all GPU partitions
of its class), then:

1. measures ``sdiag`` main and backfill scheduler cycle times over a window
   without the controller;
2. runs ``slurmopt controller --once`` (enforce) every ``--interval`` seconds
   over a window of the same length and measures ``sdiag`` again, plus the
   controller's own cycle times (read, solve, apply);
3. with ``--rounds N``, repeats 1-2 N times on the same queue, alternating which
   window comes first (round 1 without then with, round 2 with then without, ...),
   so that drift in the machine's load does not favour one side; each round gives
   one paired change;
4. prints a table (per round, then median and range over the rounds) and JSON,
   the load average at the start and the end, and takes the testbed down.

Usage: scripts/bench/controller_cycle.py [--jobs 2000] [--window 180] [--interval 60]
       [--rounds 1] [--port-base N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SLURMOPT = ROOT / ".venv" / "bin" / "slurmopt"
TESTBED = [sys.executable, str(ROOT / "scripts" / "testbed")]


def sh(argv: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=True, **kw)  # type: ignore[call-overload, no-any-return]


def sdiag(env: dict[str, str]) -> dict[str, float]:
    """Mean main and backfill cycle (microseconds) since the last reset, and their counts."""
    text = sh(["sdiag"], env).stdout
    out: dict[str, float] = {}
    main, _, bf = text.partition("Backfilling stats")
    for label, part in (("main", main), ("backfill", bf)):
        for key, pat in (
            ("mean_us", r"Mean cycle:\s+(\d+)"),
            ("cycles", r"Total cycles:\s+(\d+)"),
            ("max_us", r"Max cycle:\s+(\d+)"),
        ):
            m = re.search(pat, part)
            out[f"{label}_{key}"] = float(m.group(1)) if m else float("nan")
    return out


def submit_workload(env: dict[str, str], n: int) -> None:
    # blockers: every GPU node fully busy for 30 minutes
    for part, gpus, count in (("h100", 8, 8), ("a100", 4, 16), ("v100", 4, 12), ("t4", 4, 12)):
        for _ in range(count):
            sh(
                [
                    "sbatch",
                    "-p",
                    part,
                    f"--gres=gpu:{gpus}",
                    "-t",
                    "30",
                    "--mem=1000",
                    "--wrap",
                    "sleep 1800",
                ],
                env,
            )
    classes = [("v100", "v100,a100,h100"), ("t4", "t4,v100"), ("a100", "a100,h100")]
    for i in range(n):
        part, allowed = classes[i % len(classes)]
        minutes = 10 + (i * 7) % 110
        jid = (
            sh(
                [
                    "sbatch",
                    "--parsable",
                    "-p",
                    part,
                    "--gpus-per-node=1",
                    "-t",
                    str(minutes),
                    "--mem=1000",
                    "--wrap",
                    "sleep 60",
                ],
                env,
            )
            .stdout.strip()
            .split(";")[0]
        )
        sh(["scontrol", "update", f"JobId={jid}", f"AdminComment=slurmopt:allowed={allowed}"], env)


def pct(before: float, after: float) -> float:
    return 100.0 * (after - before) / before if before else float("nan")


def controller_once(env: dict[str, str], cfg: Path) -> dict[str, object]:
    res = subprocess.run(
        [str(SLURMOPT), "controller", "--once", "--json", "--no-history", "--config", str(cfg)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode not in (0, 1):
        raise SystemExit(f"controller failed ({res.returncode}): {res.stderr}")
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--window", type=int, default=180, help="seconds per measurement window")
    ap.add_argument("--interval", type=int, default=60, help="controller period (s)")
    ap.add_argument("--rounds", type=int, default=1, help="paired without/with rounds")
    ap.add_argument("--port-base", type=int, default=0, help="testbed ports (0: a free block)")
    ap.add_argument("--keep", action="store_true", help="leave the bench testbed up")
    args = ap.parse_args()

    env = dict(os.environ, SLURMOPT_TESTBED_DIR=str(ROOT / "var" / "testbed-bench"))
    # the testbed picks a free block of ports unless --port-base names one (an explicit
    # base fails when any of its ports is busy, even as another process's client port)
    ports = ["--port-base", str(args.port_base)] if args.port_base else []
    up = [*TESTBED, "--spec", str(ROOT / "etc/testbed/large.toml"), *ports, "up"]
    subprocess.run(up, env=env, check=True)
    env.update(
        line.removeprefix("export ").split("=", 1)  # type: ignore[misc]
        for line in sh([*TESTBED, "env"], env).stdout.splitlines()
    )
    load_start = os.getloadavg()
    cycles: list[dict[str, object]] = []
    rounds: list[dict[str, object]] = []
    try:
        t = time.perf_counter()
        submit_workload(env, args.jobs)
        print(
            f"submitted {args.jobs} pending jobs in {time.perf_counter() - t:.0f} s",
            file=sys.stderr,
        )
        time.sleep(30)  # let the scheduler settle on the new queue

        tmp = Path(tempfile.mkdtemp(prefix="slurmopt-bench-"))
        cfg = tmp / "c.toml"
        cfg.write_text(
            "[controller]\nmode = 'enforce'\nbudget_s = 5.0\nmax_moves_per_cycle = 50\n"
            f"lock_file = '{tmp}/lock'\nstate_cache = '{tmp}/cache.json'\n"
            f"routing_file = '{tmp}/routing.txt'\nkill_switch = '{tmp}/STOP'\n"
        )

        def window_without() -> dict[str, float]:
            sh(["sdiag", "-r"], env)
            time.sleep(args.window)
            return sdiag(env)

        def window_with() -> tuple[dict[str, float], list[dict[str, object]]]:
            sh(["sdiag", "-r"], env)
            done: list[dict[str, object]] = []
            end = time.monotonic() + args.window
            while time.monotonic() < end:
                started = time.monotonic()
                done.append(controller_once(env, cfg))
                time.sleep(
                    max(
                        0.0,
                        min(args.interval - (time.monotonic() - started), end - time.monotonic()),
                    )
                )
            return sdiag(env), done

        for r in range(args.rounds):
            if r % 2 == 0:
                without = window_without()
                with_ctl, done = window_with()
            else:
                with_ctl, done = window_with()
                without = window_without()
            cycles.extend(done)
            rounds.append(
                {
                    "order": "without,with" if r % 2 == 0 else "with,without",
                    "sdiag_without": without,
                    "sdiag_with": with_ctl,
                    "cycle_wall_s_median": statistics.median(float(c["wall_s"]) for c in done),  # type: ignore[arg-type]
                    "load_after": os.getloadavg()[0],
                    **{
                        f"{kind}_cycle_change_pct": pct(
                            without[f"{kind}_mean_us"], with_ctl[f"{kind}_mean_us"]
                        )
                        for kind in ("main", "backfill")
                    },
                }
            )
            print(f"round {r + 1}: {json.dumps(rounds[-1])}", file=sys.stderr)
    finally:
        if not args.keep:
            subprocess.run([*TESTBED, "down"], env=env, check=False)

    def med(key: str) -> float:
        return statistics.median(float(c[key]) for c in cycles)  # type: ignore[arg-type]

    def spread(key: str) -> dict[str, float]:
        vals = [float(r[key]) for r in rounds]  # type: ignore[arg-type]
        return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}

    result: dict[str, object] = {
        "jobs_pending": args.jobs,
        "nodes": 64,
        "rounds": len(rounds),
        "window_s": args.window,
        "controller_cycles": len(cycles),
        "cycle_wall_s_median": med("wall_s"),
        "cycle_wall_s_max": max(float(c["wall_s"]) for c in cycles),  # type: ignore[arg-type]
        "read_s_median": med("read_s"),
        "solve_s_median": med("solve_s"),
        "apply_s_median": med("apply_s"),
        "moves_applied": sum(int(c["applied"]) for c in cycles),  # type: ignore[call-overload]
        "managed_median": med("managed"),
        "main_cycle_change_pct": spread("main_cycle_change_pct"),
        "backfill_cycle_change_pct": spread("backfill_cycle_change_pct"),
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "per_round": rounds,
    }
    print(f"{'metric':<34}{'value':>14}")
    for key in (
        "rounds",
        "controller_cycles",
        "cycle_wall_s_median",
        "cycle_wall_s_max",
        "read_s_median",
        "solve_s_median",
        "apply_s_median",
        "moves_applied",
    ):
        v = result[key]
        print(f"{key:<34}{v:>14.2f}" if isinstance(v, float) else f"{key:<34}{v:>14}")
    for i, rd in enumerate(rounds, 1):
        wo, wi = rd["sdiag_without"], rd["sdiag_with"]
        assert isinstance(wo, dict) and isinstance(wi, dict)
        print(
            f"round {i} ({rd['order']}): main {wo['main_mean_us'] / 1000:.1f} -> "
            f"{wi['main_mean_us'] / 1000:.1f} ms ({rd['main_cycle_change_pct']:+.1f} %, "
            f"{wo['main_cycles']:.0f}/{wi['main_cycles']:.0f} cycles), backfill "
            f"{wo['backfill_mean_us'] / 1000:.1f} -> {wi['backfill_mean_us'] / 1000:.1f} ms "
            f"({rd['backfill_cycle_change_pct']:+.1f} %, {wo['backfill_cycles']:.0f}/"
            f"{wi['backfill_cycles']:.0f} cycles), load after {rd['load_after']:.1f}"
        )
    for kind in ("main", "backfill"):
        sp = spread(f"{kind}_cycle_change_pct")
        print(
            f"{kind} cycle change over {len(rounds)} rounds: median {sp['median']:+.1f} %, "
            f"range {sp['min']:+.1f} .. {sp['max']:+.1f} %"
        )
    print(f"load average at start {load_start}, at end {result['load_end']}")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
