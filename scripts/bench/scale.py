#!/usr/bin/env python3
"""Benchmark 2 (issue 3): scale of the time-aware placement problem.

A synthetic heterogeneous cluster (default: 2,000 nodes in 32 partitions, 3,000
running and 10,000 pending jobs) is built from a seed; then, each timed from
the snapshot on (build + solve + plan):

* the greedy path (``Problem.build`` + ``earliest-start`` + ``plan_from``);
* the ``auto`` path with a budget that keeps the whole under ``--auto-wall``
  seconds (falls back to ``sa``/``ga`` when ``auto`` is not installed);
* incremental evaluations per second (random single-job moves, ``delta``);
* peak memory (tracemalloc peak of the Python heap, and ru_maxrss).

Prints a table, then one JSON object on the last line.

Usage::

    .venv/bin/python scripts/bench/scale.py [--nodes 2000 --partitions 32
        --running 3000 --pending 10000 --seed 1 --auto-wall 5.0] [--calibrate]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
import tracemalloc
from typing import Any

from slurmopt.model import Job, JobRequest, JobState, Node, NodeState, Partition, Snapshot
from slurmopt.optimize import PolicyUnavailable, get_solver, make_plan
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.problem import Problem
from slurmopt.optimize.search import Budget

NOW = 1_750_000_000
GPU_TYPES = ("h100", "a100", "l40s", "v100", "t4")


def synthetic_snapshot(
    n_nodes: int, n_parts: int, n_running: int, n_pending: int, seed: int
) -> Snapshot:
    """A heterogeneous cluster: 3/4 GPU partitions (one type each), 1/4 CPU; some overlap."""
    rng = random.Random(seed)
    n_gpu_parts = max(1, n_parts * 3 // 4)
    per = n_nodes // n_parts
    nodes: list[Node] = []
    parts: list[Partition] = []
    for p in range(n_parts):
        gtype = GPU_TYPES[p % len(GPU_TYPES)] if p < n_gpu_parts else None
        names = []
        for i in range(per):
            name = f"n{p:02d}{i:03d}"
            names.append(name)
            drained = rng.random() < 0.01
            nodes.append(
                Node(
                    name=name,
                    state=NodeState.IDLE,
                    flags=frozenset({"DRAIN"}) if drained else frozenset(),
                    cpus=rng.choice((64, 96, 128)),
                    memory_mb=rng.choice((256_000, 512_000, 1_024_000)),
                    gpus={gtype: rng.choice((4, 8))} if gtype else {},
                )
            )
        parts.append(
            Partition(name=f"p{p:02d}-{gtype or 'cpu'}", nodes=tuple(names), max_time_s=3 * 86400)
        )
    # overlap: every 4th partition also owns the first 8 nodes of the next one
    for p in range(0, n_parts - 1, 4):
        extra = parts[p + 1].nodes[:8]
        parts[p] = Partition(
            name=parts[p].name, nodes=parts[p].nodes + extra, max_time_s=parts[p].max_time_s
        )
    gpu_parts = [p for p in parts if not p.name.endswith("cpu")]
    cpu_parts = [p for p in parts if p.name.endswith("cpu")]
    by_name = {n.name: n for n in nodes}
    jobs: list[Job] = []
    jid = 1
    used: dict[str, list[int]] = {n.name: [0, 0, 0] for n in nodes}
    for _ in range(n_running):
        p = rng.choice(parts)
        name = rng.choice(p.nodes)
        nd = by_name[name]
        g = min(nd.gpu_total - used[name][2], rng.choice((1, 1, 2, 4))) if nd.gpu_total else 0
        c = min(nd.cpus - used[name][0], 8 * max(1, g))
        if c <= 0 or (nd.gpu_total and g <= 0):
            continue
        used[name][0] += c
        used[name][2] += g
        limit = rng.choice((3600, 4 * 3600, 12 * 3600, 24 * 3600))
        start = NOW - rng.randint(0, limit - 60)
        gt = next(iter(nd.gpus), None)
        jobs.append(
            Job(
                job_id=jid,
                name=f"r{jid}",
                user="u",
                state=JobState.RUNNING,
                partitions=(p.name,),
                request=JobRequest(gpus_per_node=g, gpu_type=gt, time_limit_s=limit),
                start_time=start,
                end_time=start + limit,
                nodes=(name,),
                gpus_alloc={gt: g} if gt and g else {},
                cpus_alloc=c,
                memory_alloc_mb=c * 4000,
                submit_time=start - 100,
            )
        )
        jid += 1
    for _ in range(n_pending):
        gpu_job = rng.random() < 0.85
        pool = gpu_parts if gpu_job else cpu_parts
        size = min(len(pool), rng.choice((1, 2, 2, 3)))
        listed = tuple(sorted({q.name for q in rng.sample(pool, size)}))
        g = rng.choice((1, 1, 1, 2, 4, 8)) if gpu_job else 0
        k = 2 if (gpu_job and g == 8 and rng.random() < 0.3) else 1
        limit = int(rng.lognormvariate(9.0, 1.0)) // 60 * 60 + 600
        jobs.append(
            Job(
                job_id=jid,
                name=f"q{jid}",
                user=f"u{jid % 50}",
                state=JobState.PENDING,
                partitions=listed,
                request=JobRequest(
                    nodes_min=k,
                    cpus_min=8 * max(1, g) * k,
                    cpus_per_task=8 * max(1, g),
                    mem_per_cpu_mb=4000,
                    gpus_per_node=g,
                    time_limit_s=min(limit, 2 * 86400),
                ),
                priority=rng.randint(1, 100_000),
                submit_time=NOW - rng.randint(0, 86400),
            )
        )
        jid += 1
    return Snapshot(
        taken_at=NOW,
        nodes=tuple(nodes),
        partitions=tuple(parts),
        jobs=tuple(jobs),
        source="synthetic",
    )


def evals_per_second(problem: Problem, seconds: float, seed: int) -> tuple[float, float, int]:
    """Random single-job ``delta`` calls per wall second and per CPU second (half applied)."""
    rng = random.Random(seed)
    inc = problem.incremental(problem.initial_assignments()["earliest-start"])
    movable = [j for j, ch in enumerate(problem.choices) if len(ch) > 1]
    if not movable:
        return 0.0, 0.0, 0
    n = 0
    t, c = time.perf_counter(), time.process_time()
    while time.perf_counter() - t < seconds:
        j = rng.choice(movable)
        p = rng.choice(problem.choices[j])
        if inc.delta(j, p) < 0 or rng.random() < 0.5:
            inc.apply(j, p)
        n += 1
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return n / wall, n / max(cpu, 1e-9), n


def full_evals_per_second(problem: Problem, seed: int, n: int = 5) -> tuple[float, float]:
    """Full ``evaluate`` calls per wall and per CPU second on random plans (no memo hits)."""
    rng = random.Random(seed)
    plans = [[rng.choice(list(ch)) for ch in problem.choices] for _ in range(n)]
    t, c = time.perf_counter(), time.process_time()
    for genes in plans:
        problem.evaluate(genes)
    return n / (time.perf_counter() - t), n / max(time.process_time() - c, 1e-9)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--running", type=int, default=3000)
    ap.add_argument("--pending", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=OptimizeConfig().window)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--auto-wall", type=float, default=5.0)
    ap.add_argument("--evals-seconds", type=float, default=3.0)
    ap.add_argument(
        "--calibrate",
        action="store_true",
        help="also print the RATE_CONSTANT implied by the measured delta rate",
    )
    args = ap.parse_args(argv)

    t = time.perf_counter()
    snap = synthetic_snapshot(args.nodes, args.partitions, args.running, args.pending, args.seed)
    gen_s = time.perf_counter() - t
    cfg = OptimizeConfig(window=args.window)
    out: dict[str, Any] = {"args": vars(args), "generate_s": round(gen_s, 3)}

    t, c = time.perf_counter(), time.process_time()
    problem = Problem.build(snap, cfg)
    build_s = time.perf_counter() - t
    plan = make_plan(problem, "earliest-start", seed=args.seed)
    greedy_s = time.perf_counter() - t
    greedy_cpu = time.process_time() - c
    # memory in a second, traced pass (tracemalloc slows Python down: not timed)
    tracemalloc.start()
    make_plan(Problem.build(snap, cfg), "earliest-start", seed=args.seed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out.update(
        build_s=round(build_s, 3),
        greedy_path_s=round(greedy_s, 3),
        greedy_path_cpu_s=round(greedy_cpu, 3),
        greedy_objective=plan.objective,
        stats=problem.build_stats,
        greedy_peak_mib=round(peak / 2**20, 1),
    )

    policy = "auto"
    for cand in ("auto", "sa", "ga"):
        try:
            get_solver(cand)
        except PolicyUnavailable:
            continue
        policy = cand
        break
    else:
        policy = ""
    if policy:
        t, c = time.perf_counter(), time.process_time()
        problem2 = Problem.build(snap, cfg)
        spent = time.perf_counter() - t
        budget = Budget(seconds=max(0.1, args.auto_wall - spent - 0.6))
        plan2 = make_plan(problem2, policy, seed=args.seed, budget=budget)
        auto_s = time.perf_counter() - t
        out["auto_path_cpu_s"] = round(time.process_time() - c, 3)
        out.update(
            auto_policy=policy,
            auto_budget_s=round(budget.seconds, 2),
            auto_path_s=round(auto_s, 3),
            auto_objective=plan2.objective,
            auto_stats={k: v for k, v in plan2.stats.items() if isinstance(v, int | float | str)},
        )
    else:
        out["auto_policy"] = None

    rate, rate_cpu, n = evals_per_second(problem, args.evals_seconds, args.seed)
    full, full_cpu = full_evals_per_second(problem, args.seed)
    out.update(
        evals_per_cpu_s=round(rate_cpu, 1),
        full_evals_per_s=round(full, 2),
        full_evals_per_cpu_s=round(full_cpu, 2),
    )
    out.update(
        evals_per_s=round(rate, 1),
        evals=n,
        calibrated_evals_per_s=round(problem.evals_per_second, 1),
    )
    if args.calibrate:
        from slurmopt.optimize import schedule

        out["rate_constant"] = round(schedule.RATE_CONSTANT * rate_cpu / problem.evals_per_second)
    out["maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    rows = [
        (
            "snapshot",
            f"{args.nodes} nodes, {args.partitions} partitions, "
            f"{args.running} running, {args.pending} pending",
        ),
        (
            "problem",
            f"{problem.build_stats['variable']} variable, "
            f"{problem.build_stats['fixed']} fixed, "
            f"{problem.build_stats['beyond_window']} beyond window (window {args.window})",
        ),
        ("build", f"{build_s:.3f} s"),
        (
            "greedy path (build+earliest-start+plan)",
            f"{greedy_s:.3f} s wall, {greedy_cpu:.3f} s CPU (target <= 1 s)",
        ),
        ("greedy peak heap", f"{out['greedy_peak_mib']} MiB"),
    ]
    if policy:
        rows += [
            (
                f"{policy} path (build+solve+plan)",
                f"{out['auto_path_s']:.3f} s wall, {out['auto_path_cpu_s']:.3f} s CPU "
                "(target <= 5 s)",
            ),
            (
                f"{policy} objective vs greedy",
                f"{out['auto_objective']:.1f} vs {out['greedy_objective']:.1f} s",
            ),
        ]
    rows += [
        (
            "incremental delta()/s",
            f"{out['evals_per_s']} per wall s, {out['evals_per_cpu_s']} per CPU s "
            f"(calibrated estimate {out['calibrated_evals_per_s']})",
        ),
        (
            "full evaluate()/s (fresh random plans)",
            f"{out['full_evals_per_s']} per wall s, {out['full_evals_per_cpu_s']} per CPU s",
        ),
        ("max RSS", f"{out['maxrss_mib']} MiB (target <= 1024)"),
        ("load average (1 min) at the end", f"{os.getloadavg()[0]:.2f}"),
    ]
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
