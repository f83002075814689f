"""Time-indexed MILP for small time-aware problems: an exact reference for that model.

Variables: ``x[j, p, s]`` = 1 when scheduled job j (variable or fixed pending)
starts in partition p at slot s. Time is cut into ``slots`` slots of
``delta`` seconds from ``problem.now``; a job starts at a slot boundary no
earlier than its eligible time and holds its resources for
``ceil(runtime / delta)`` slots.

Capacity is kept per *node group*: nodes with the same partition membership
and GPU type, their free CPUs, memory and GPUs summed (at each slot's start,
from the availability profiles, so running jobs release as they end). A job
on p draws its per-node demand x node count from the groups of the nodes its
option may use, split between groups by continuous ``u[j, p, g, t]``; so
node-level packing is relaxed (a job may straddle groups and fractions of
nodes), which makes the model a relaxation of node packing but a restriction
in time (slot boundaries): neither a strict lower nor upper bound on the
list-scheduled objective, but the exact optimum of the time-indexed model,
which gets closer with more slots. It is a reference, not the
list-scheduling objective itself: :func:`solve` returns the MILP's partition
choice scored by ``problem.evaluate`` (list scheduling), with the MILP's own
value and bound in the statistics.

Objective: sum over jobs of weight x (start + runtime - submit) (``wait``:
start - submit) plus the move penalty, over the total weight, as
``schedule.contribution`` / ``combine``. ``makespan`` is not modelled.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_right
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from slurmopt.optimize.milp import quiet_stdout
from slurmopt.optimize.search import Assignment, Budget

if TYPE_CHECKING:
    from slurmopt.optimize.problem import Problem

log = logging.getLogger(__name__)

MAX_VARIABLES = 60_000
"""Refuse models larger than this (binaries + continuous)."""


def _free_at(problem: Problem, n: int, t: float) -> tuple[int, int, int]:
    base = problem.base
    i = max(0, bisect_right(base.times[n], t) - 1)
    return base.cpu[n][i], base.mem[n][i], base.gpu[n][i]


def build_and_solve(
    problem: Problem, *, slots: int = 24, time_limit: float = 30.0
) -> dict[str, Any]:
    """Build the time-indexed MILP of ``problem`` and solve it with HiGHS.

    Returns a dict: ``status``, ``genes`` (partition per variable job, or
    None), ``objective`` and ``bound`` (in the problem's units), ``delta``,
    ``slots``, ``variables``, ``wall_s``.

    Raises:
        ValueError: makespan objective, or a model over :data:`MAX_VARIABLES`.
    """
    from slurmopt.optimize import schedule as sched

    if problem.config.objective == "makespan":
        raise ValueError("time-indexed MILP: makespan objective not modelled")
    t_start = time.perf_counter()
    jobs = range(len(problem.options))
    es = sched.run(problem, problem.parts_of(problem.current_genes()), rule="start")
    longest = max((opt.runtime for opts in problem.options for opt in opts.values()), default=1)
    horizon = max(
        (
            s + problem.options[o][p].runtime - problem.now
            for o, (s, p) in enumerate(zip(es.starts, es.parts, strict=True))
        ),
        default=1.0,
    )
    horizon = max(horizon, longest) * 1.5
    delta = max(1.0, horizon / slots)
    # Node groups: same partition membership and same GPU capacity signature.
    sig: dict[tuple[Any, ...], int] = {}
    group_of: list[int] = []
    member: list[set[int]] = [set() for _ in problem.snapshot.nodes]
    for p, part in enumerate(problem.partitions):
        names = set(part.nodes)
        for n, node in enumerate(problem.snapshot.nodes):
            if node.name in names:
                member[n].add(p)
    for n, node in enumerate(problem.snapshot.nodes):
        signature = (tuple(sorted(member[n])), tuple(sorted(node.gpus)))
        group_of.append(sig.setdefault(signature, len(sig)))
    n_groups = len(sig)
    free = np.zeros((3, n_groups, slots))
    for n in range(len(problem.snapshot.nodes)):
        for t in range(slots):
            c, m, g = _free_at(problem, n, problem.now + t * delta)
            free[:, group_of[n], t] += (c, m, g)
    # Variables.
    xs: list[tuple[int, int, int, int]] = []  # (job, part, start slot, duration slots)
    cost: list[float] = []
    for o in jobs:
        first = max(0, math.ceil((problem.t0[o] - problem.now) / delta - 1e-9))
        parts = [problem.fixed[o]] if problem.fixed[o] >= 0 else sorted(problem.options[o])
        for p in parts:
            opt = problem.options[o][p]
            dur = max(1, math.ceil(opt.runtime / delta - 1e-9))
            for s in range(first, slots - dur + 1):
                term, _, pen = sched.contribution(problem, o, p, problem.now + s * delta)
                xs.append((o, p, s, dur))
                cost.append((term + pen) / problem.total_weight)
    us: list[tuple[int, int, int, int]] = []  # (x-block key: job, part, group, slot)
    u_index: dict[tuple[int, int, int, int], int] = {}
    for o in jobs:
        parts = [problem.fixed[o]] if problem.fixed[o] >= 0 else sorted(problem.options[o])
        for p in parts:
            groups = sorted({group_of[n] for n in problem.options[o][p].nodes})
            for g in groups:
                for t in range(slots):
                    u_index[(o, p, g, t)] = len(xs) + len(us)
                    us.append((o, p, g, t))
    nvar = len(xs) + len(us)
    if nvar > MAX_VARIABLES:
        raise ValueError(f"time-indexed MILP: {nvar} variables (max {MAX_VARIABLES})")
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    r = 0
    by_job: dict[int, list[int]] = {}
    for i, (o, _, _, _) in enumerate(xs):
        by_job.setdefault(o, []).append(i)
    for o in jobs:  # each job starts exactly once
        for i in by_job.get(o, []):
            rows.append(r)
            cols.append(i)
            vals.append(1.0)
        lo.append(1.0)
        hi.append(1.0)
        r += 1
    link: dict[tuple[int, int, int], int] = {}

    def link_row(key: tuple[int, int, int]) -> int:
        """The equality row (= 0) tying job o's x on p to its u in slot t."""
        nonlocal r
        if key not in link:
            link[key] = r
            lo.append(0.0)
            hi.append(0.0)
            r += 1
        return link[key]

    for i, (o, p, s, dur) in enumerate(xs):  # running x => sum_g u = 1 in each slot it runs
        for t in range(s, s + dur):
            rows.append(link_row((o, p, t)))
            cols.append(i)
            vals.append(-1.0)
    for (o, p, _g, t), k in u_index.items():
        rows.append(link_row((o, p, t)))
        cols.append(k)
        vals.append(1.0)
    cap_row: dict[tuple[int, int, int], int] = {}
    for (o, p, g, t), k in u_index.items():
        opt = problem.options[o][p]
        n0 = opt.nodes[0]
        c, m, gg = problem.base.demand(n0, opt.cpu, opt.mem, opt.gpu)
        for res, amount in enumerate((c, m, gg)):
            if amount <= 0:
                continue
            ckey = (res, g, t)
            if ckey not in cap_row:
                cap_row[ckey] = r
                lo.append(-np.inf)
                hi.append(float(free[res, g, t]))
                r += 1
            rows.append(cap_row[ckey])
            cols.append(k)
            vals.append(float(amount * opt.n_nodes))
    a = coo_array((vals, (rows, cols)), shape=(r, nvar)).tocsr()
    c_vec = np.zeros(nvar)
    c_vec[: len(xs)] = cost
    integrality = np.zeros(nvar)
    integrality[: len(xs)] = 1
    with quiet_stdout():
        res = milp(
            c_vec,
            integrality=integrality,
            bounds=Bounds(0.0, 1.0),
            constraints=[LinearConstraint(a, np.array(lo), np.array(hi))],
            options={"time_limit": float(time_limit), "disp": False, "mip_rel_gap": 1e-6},
        )
    status = {0: "optimal", 1: "time_limit", 2: "infeasible"}.get(int(res.status), "error")
    genes = None
    if res.x is not None:
        chosen = {xs[i][0]: xs[i][1] for i in range(len(xs)) if res.x[i] > 0.5}
        genes = [chosen.get(o, problem.default_part(o)) for o in problem.var_pos]
    bound = getattr(res, "mip_dual_bound", None)
    return {
        "status": status,
        "genes": genes,
        "objective": None if res.x is None else float(res.fun),
        "bound": None if bound is None else float(bound),
        "delta": delta,
        "slots": slots,
        "variables": nvar,
        "wall_s": time.perf_counter() - t_start,
    }


def solve(problem: Problem, *, seed: int, budget: Budget, slots: int = 24) -> Assignment:
    """Solver interface: the time-indexed MILP's partition choice, scored by the problem.

    Raises:
        ValueError: see :func:`build_and_solve`, or no plan found.
    """
    out = build_and_solve(problem, slots=slots, time_limit=max(0.1, budget.seconds))
    genes = out.pop("genes")
    if genes is None:
        raise ValueError(f"time-indexed MILP found no plan ({out['status']})")
    return Assignment(
        genes=tuple(genes),
        objective=problem.evaluate(genes),
        solver="milp-time",
        seed=seed,
        feasible=problem.feasible(genes),
        wall_s=out["wall_s"],
        stats=out,
    )
