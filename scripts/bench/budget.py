"""Wall-clock time of the search solvers against their time budget (the unit tests count steps).

Usage: .venv/bin/python scripts/bench/budget.py [--repeat 3]

For each solver, a random static instance (as the old unit tests used: sa and ga
1000 jobs x 32 partitions with a 1 s budget, auto 1000 x 50 with 2 s) is solved
``--repeat`` times; prints the wall time of each run and its ratio to the budget.
"""

from __future__ import annotations

import argparse
import time

from slurmopt.optimize import auto, ga, sa
from slurmopt.optimize.search import Budget
from slurmopt.optimize.static import random_instance

CASES = (("sa", sa.solve, 1000, 32, 5, 1.0), ("ga", ga.solve, 1000, 32, 5, 1.0))
CASES += (("auto", auto.solve, 1000, 50, 3, 2.0),)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for name, solve, jobs, parts, seed, budget in CASES:
        p = random_instance(jobs, parts, seed=seed)
        walls = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            solve(p, seed=1, budget=Budget(seconds=budget))
            walls.append(time.perf_counter() - t0)
        worst = max(walls)
        print(
            f"{name:5} budget {budget:.1f} s  wall "
            + " ".join(f"{w:.3f}" for w in walls)
            + f" s  worst/budget {worst / budget:.3f}"
        )


if __name__ == "__main__":
    main()
