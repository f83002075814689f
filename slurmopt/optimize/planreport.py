"""What ``slurmopt plan`` reports: a plan with every job's candidates, as a JSON-ready dict.

:func:`build_report` reads the snapshot (file or live), builds the Problem,
solves it with one policy and compares with what Slurm itself would do; the
command only prints it (schema 1, ``--json``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from slurmopt import config as config_mod
from slurmopt.errors import SolverFailed

OPTIMIZE_SECTION = "slurmopt.optimize.config:OptimizeConfig"


def _num(x: float | None) -> float | None:
    return None if x is None or math.isinf(x) else round(float(x), 3)


def _load_config(config_file: str | None) -> Any:
    from slurmopt.optimize.config import OptimizeConfig

    sections = {**config_mod.SECTIONS, "optimize": OPTIMIZE_SECTION}
    loaded = config_mod.load(explicit=[Path(config_file)] if config_file else [], sections=sections)
    cfg = loaded["optimize"]
    assert isinstance(cfg, OptimizeConfig)
    return cfg


def build_report(
    snapshot_file: str | None, policy: str, seed: int, budget_s: float, config_file: str | None
) -> dict[str, Any]:
    """Everything ``plan`` prints, as a JSON-ready dict (stable schema, see ``--json``).

    Raises:
        SlurmoptError: unreadable snapshot or config, Slurm unreachable, unknown policy.
    """
    from slurmopt.optimize import greedy, solve
    from slurmopt.optimize.problem import Problem
    from slurmopt.optimize.search import Budget
    from slurmopt.slurm.load import load_snapshot

    cfg = _load_config(config_file)
    snap = load_snapshot(snapshot_file)
    t = time.perf_counter()
    problem = Problem.build(snap, cfg)
    build_s = time.perf_counter() - t
    try:
        a = solve(problem, policy, seed=seed, budget=Budget(seconds=budget_s))
    except ValueError as exc:  # a solver that cannot answer this problem says why
        raise SolverFailed(str(exc)) from exc
    plan = problem.plan_from(a.genes, solver=a.solver, seed=seed, stats=a.stats)
    rows = problem.candidates(a.genes)
    # what Slurm itself would do: each job where it starts first among its partitions
    es = greedy.earliest_start(problem)
    slurm_choice = {
        problem.jobs[o].job_id: problem.partitions[p].name
        for o, p in zip(problem.var_pos, es, strict=True)
    }
    wall = time.perf_counter() - t
    now = problem.now
    jobs = []
    for row in rows:
        cands = [
            {
                **c,
                "start": _num(c["start"]),
                "end": _num(c["end"]),
                "runtime": _num(c["runtime"]),
                "wait_s": None if c["start"] is None else _num(c["start"] - now),
            }
            for c in row["candidates"]
        ]
        slurm = slurm_choice.get(row["job_id"], row["chosen"])
        jobs.append({**row, "slurm": slurm, "changed": slurm != row["chosen"], "candidates": cands})
    return {
        "schema": 1,
        "source": snap.source,
        "now": now,
        "policy": policy,
        "solver": a.solver,
        "seed": seed,
        "budget_s": budget_s,
        "objective": _num(plan.objective),
        "objective_kind": cfg.objective,
        "feasible": a.feasible,
        "build_s": round(build_s, 4),
        "solver_wall_s": round(a.wall_s, 4),
        "wall_s": round(wall, 4),
        "stats": {**problem.build_stats, **_jsonable(a.stats)},
        "changed": sum(1 for j in jobs if j["changed"]),
        "jobs": jobs,
        "unplaced": {str(k): v for k, v in sorted(plan.unplaced.items())},
    }


def _jsonable(d: Any) -> Any:
    return json.loads(json.dumps(d, default=str))
