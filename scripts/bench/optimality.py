#!/usr/bin/env python3
"""Benchmark 1 of issue 3: optimality gap of the heuristics on the static form.

Random tight GAP instances (``slurmopt.optimize.static.random_instance``):
5 each at 1000 jobs x {10, 32, 50} partitions and 30 at 200 jobs x 8. Each is
solved by HiGHS (60 s limit) for the reference: the optimum, or the MILP's
dual bound where it does not close (the gap is then an upper bound on the
true gap). Then each heuristic runs with a 5 s budget:

* ``ga``, ``sa``: seeded with the problem's greedy seed only (cheapest
  partition per job, repaired);
* ``auto``: the default policy, LP rounding + greedy seeds, GA then SA;
* ``greedy``: the best greedy seed alone (what ``ga`` and ``sa`` start from);
* ``lp-round``: LP rounding + repair + dive alone (the seed ``auto`` starts from);
* optional ``ga+lp`` / ``sa+lp``: GA / SA started from LP rounding.

Prints a table (median and worst gap per size and method; ``clock`` counts
solver stages cut by the wall-clock safety stop, i.e. runs that were not
reproducible step for step) and JSON; with
``--out FILE`` every instance's record is appended as it finishes (JSON
lines), so a cut-short run keeps what it measured.

Usage::

    .venv/bin/python scripts/bench/optimality.py            # full (about 35 min on 1 core)
    .venv/bin/python scripts/bench/optimality.py --quick    # 1-2 instances per size, 2 s, 10 s MILP
    # two shards in parallel, then merge:
    .venv/bin/python scripts/bench/optimality.py --shard 0/2 --out a.jsonl &
    .venv/bin/python scripts/bench/optimality.py --shard 1/2 --out b.jsonl; wait
    .venv/bin/python scripts/bench/optimality.py --summarize a.jsonl b.jsonl
    .venv/bin/python scripts/bench/optimality.py --calibrate   # step rates for the budgets
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from slurmopt.optimize import auto, ga, sa
from slurmopt.optimize.lp_round import round_lp
from slurmopt.optimize.milp import solve_lp, solve_milp
from slurmopt.optimize.search import Budget
from slurmopt.optimize.static import StaticProblem, random_instance

FULL = [(1000, 10, 5), (1000, 32, 5), (1000, 50, 5), (200, 8, 30)]
QUICK = [(1000, 10, 1), (1000, 32, 1), (1000, 50, 1), (200, 8, 2)]


def run_instance(
    n_jobs: int,
    n_parts: int,
    inst: int,
    *,
    budget_s: float,
    milp_s: float,
    variants: list[str],
    seed: int,
) -> dict[str, Any]:
    """Solve one instance with the MILP and every variant; gaps in percent."""
    prob: StaticProblem = random_instance(n_jobs, n_parts, seed=1000 * n_parts + inst)
    lp = solve_lp(prob)
    m = solve_milp(prob, time_limit=milp_s)
    closed = m.status == "optimal"
    ref = m.objective if (closed and m.objective is not None) else max(m.bound, lp.bound)
    rec: dict[str, Any] = {
        "jobs": n_jobs,
        "parts": n_parts,
        "instance": inst,
        "lp_bound": lp.bound,
        "milp_status": m.status,
        "milp_objective": m.objective,
        "milp_bound": m.bound,
        "milp_gap_pct": None if m.gap is None else 100.0 * m.gap,
        "milp_s": round(m.wall_s, 2),
        "reference": "optimum" if closed else "dual_bound",
        "ref": ref,
        "results": {},
    }
    lp_genes, _ = round_lp(prob, lp)

    def record(name: str, genes: Any, objective: float, feasible: bool, wall: float) -> None:
        rec["results"][name] = {
            "objective": objective,
            "feasible": feasible,
            "gap_pct": 100.0 * (objective - ref) / abs(ref) if feasible else None,
            "wall_s": round(wall, 3),
        }

    seeds = prob.initial_assignments()
    name, genes = min(
        seeds.items(), key=lambda kv: (not prob.feasible(kv[1]), prob.evaluate(kv[1]))
    )
    record("greedy", genes, prob.evaluate(genes), prob.feasible(genes), 0.0)
    record("lp-round", lp_genes, prob.evaluate(lp_genes), prob.feasible(lp_genes), lp.wall_s)
    budget = Budget(seconds=budget_s)
    for name in variants:
        t0 = time.perf_counter()
        if name == "auto":
            res = auto.solve(prob, seed=seed, budget=budget)
        elif name in ("ga", "sa"):
            res = (ga if name == "ga" else sa).solve(prob, seed=seed, budget=budget)
        elif name in ("ga+lp", "sa+lp"):
            mod = ga if name == "ga+lp" else sa
            res = mod.solve(prob, seed=seed, budget=budget, initial=lp_genes)
        else:
            raise SystemExit(f"unknown variant {name}")
        wall = time.perf_counter() - t0
        record(name, res.genes, res.objective, res.feasible, wall)
        rec["results"][name]["deadline_stops"] = _deadline_stops(res.stats)
    return rec


def _deadline_stops(stats: dict[str, Any]) -> int:
    """How many stages of a run were cut by the wall clock (0: deterministic run)."""
    n = int(stats.get("stopped_by") == "deadline")
    for sub in ("ga", "sa", "lns"):
        if isinstance(stats.get(sub), dict):
            n += int(stats[sub].get("stopped_by") == "deadline")
    return n


def summarize(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Median / worst gap per (size, method)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        key = f"{r['jobs']}x{r['parts']}"
        grp = out.setdefault(key, {"instances": 0, "closed": 0, "methods": {}})
        grp["instances"] += 1
        grp["closed"] += r["reference"] == "optimum"
        for name, res in r["results"].items():
            m = grp["methods"].setdefault(
                name, {"gaps": [], "infeasible": 0, "max_wall_s": 0.0, "deadline_stops": 0}
            )
            m["deadline_stops"] += res.get("deadline_stops", 0)
            if res["gap_pct"] is None:
                m["infeasible"] += 1
            else:
                m["gaps"].append(res["gap_pct"])
            m["max_wall_s"] = max(m["max_wall_s"], res["wall_s"])
    for grp in out.values():
        for m in grp["methods"].values():
            gaps = m.pop("gaps")
            m["median_gap_pct"] = round(statistics.median(gaps), 3) if gaps else None
            m["worst_gap_pct"] = round(max(gaps), 3) if gaps else None
    return out


def print_table(summary: dict[str, dict[str, Any]]) -> None:
    print(
        f"{'size':>9} {'n':>3} {'closed':>6} {'method':>9} {'median%':>8} {'worst%':>8} "
        f"{'infeas':>6} {'max s':>6} {'clock':>5}"
    )
    for key, grp in summary.items():
        for name, m in grp["methods"].items():
            med = "-" if m["median_gap_pct"] is None else f"{m['median_gap_pct']:.3f}"
            worst = "-" if m["worst_gap_pct"] is None else f"{m['worst_gap_pct']:.3f}"
            print(
                f"{key:>9} {grp['instances']:>3} {grp['closed']:>6} {name:>9} {med:>8} "
                f"{worst:>8} {m['infeasible']:>6} {m['max_wall_s']:>6.2f} "
                f"{m['deadline_stops']:>5}"
            )


def calibrate() -> dict[str, Any]:
    """Measure SA steps and LNS steps per second on 200x8 and 1000x32 instances.

    Fits ``seconds per step = fixed + per_job x jobs`` through the two SA
    points (``static.STEP_SECONDS``) and reports the LNS step time per freed
    job (``lp_round.LNS_STEP_S``). Uses ``max_evaluations`` so the step
    count is fixed and the wall time is what is measured.
    """
    from slurmopt.optimize.lp_round import LNS_MAX_JOBS, LNS_PARTS, lns_polish, round_lp

    out: dict[str, Any] = {"sa": {}, "lns": {}}
    for n_jobs, n_parts in ((200, 8), (1000, 32)):
        prob = random_instance(n_jobs, n_parts, seed=1)
        steps = 60_000
        t0 = time.perf_counter()
        res = sa.solve(prob, seed=0, budget=Budget(seconds=600, max_evaluations=steps))
        out["sa"][n_jobs] = (time.perf_counter() - t0) / res.stats["steps"]
        genes, _ = round_lp(prob)
        t0 = time.perf_counter()
        _, st = lns_polish(prob, genes, seed=0, steps=40, deadline=time.perf_counter() + 600)
        freed = min(LNS_PARTS * n_jobs / n_parts, LNS_MAX_JOBS or n_jobs)
        out["lns"][n_jobs] = {
            "s_per_step": (time.perf_counter() - t0) / st["steps"],
            "freed_jobs": freed,
        }
    (j1, s1), (j2, s2) = sorted(out["sa"].items())
    per_job = (s2 - s1) / (j2 - j1)
    out["sa_fit"] = {"fixed_s": s1 - per_job * j1, "per_job_s": per_job}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1-2 instances per size, short limits")
    ap.add_argument("--budget", type=float, default=None, help="heuristic budget (s); default 5")
    ap.add_argument("--milp-limit", type=float, default=None, help="MILP limit (s); default 60")
    ap.add_argument("--variants", default="ga,sa,auto", help="comma list: ga,sa,auto,ga+lp,sa+lp")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="append one JSON line per instance to this file")
    ap.add_argument("--json", dest="json_file", help="write the summary JSON here too")
    ap.add_argument("--shard", default="0/1", help="i/n: run every n-th instance from i")
    ap.add_argument(
        "--summarize", nargs="+", metavar="JSONL", help="only merge --out files and print"
    )
    ap.add_argument("--calibrate", action="store_true", help="measure step rates and exit")
    args = ap.parse_args(argv)
    if args.calibrate:
        print(json.dumps(calibrate(), indent=1))
        return 0
    if args.summarize:
        records = []
        for path in args.summarize:
            with open(path, encoding="utf-8") as fh:
                records.extend(json.loads(line) for line in fh if line.strip())
        records.sort(key=lambda r: (-r["jobs"], r["parts"], r["instance"]))
        summary = summarize(records)
        print_table(summary)
        print(json.dumps({"files": args.summarize, "summary": summary}, indent=1))
        return 0
    shard_i, shard_n = (int(v) for v in args.shard.split("/"))
    sizes = QUICK if args.quick else FULL
    budget_s = args.budget if args.budget is not None else (2.0 if args.quick else 5.0)
    milp_s = args.milp_limit if args.milp_limit is not None else (10.0 if args.quick else 60.0)
    variants = [v for v in args.variants.split(",") if v]
    records = []
    # Round-robin over sizes, so a run cut short still covers every size.
    todo = sorted(
        ((j, p, i) for j, p, count in sizes for i in range(count)),
        key=lambda t: (t[2], -t[0], t[1]),
    )
    for k, (n_jobs, n_parts, inst) in enumerate(todo):
        if k % shard_n != shard_i:
            continue
        rec = run_instance(
            n_jobs,
            n_parts,
            inst,
            budget_s=budget_s,
            milp_s=milp_s,
            variants=variants,
            seed=args.seed,
        )
        records.append(rec)
        gaps = {m: v["gap_pct"] for m, v in rec["results"].items()}
        print(
            f"{n_jobs}x{n_parts}#{inst} ref={rec['reference']} milp={rec['milp_s']}s "
            + " ".join(f"{m}={'-' if g is None else f'{g:.3f}'}" for m, g in gaps.items()),
            file=sys.stderr,
            flush=True,
        )
        if args.out:
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")
    summary = summarize(records)
    print_table(summary)
    doc = {
        "budget_s": budget_s,
        "milp_limit_s": milp_s,
        "variants": variants,
        "seed": args.seed,
        "summary": summary,
    }
    print(json.dumps(doc, indent=1))
    if args.json_file:
        with open(args.json_file, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
