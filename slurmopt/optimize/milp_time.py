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


def _delta(problem: Problem, slots: int) -> float:
    """Slot length: 1.5 x the earliest-start plan's horizon (or the longest runtime), / slots."""
    from slurmopt.optimize import schedule as sched

    es = sched.run(problem, problem.parts_of(problem.current_genes()), rule="start")
    longest = max((opt.runtime for opts in problem.options for opt in opts.values()), default=1)
    horizon = max(
        (
            s + problem.options[o][p].runtime - problem.now
            for o, (s, p) in enumerate(zip(es.starts, es.parts, strict=True))
        ),
        default=1.0,
    )
    return max(1.0, max(horizon, longest) * 1.5 / slots)


def _node_groups(problem: Problem) -> tuple[list[int], int]:
    """Group per node (same partition membership and GPU capacity), and the group count."""
    sig: dict[tuple[Any, ...], int] = {}
    member: list[set[int]] = [set() for _ in problem.snapshot.nodes]
    for p, part in enumerate(problem.partitions):
        names = set(part.nodes)
        for n, node in enumerate(problem.snapshot.nodes):
            if node.name in names:
                member[n].add(p)
    group_of = []
    for n, node in enumerate(problem.snapshot.nodes):
        signature = (tuple(sorted(member[n])), tuple(sorted(node.gpus)))
        group_of.append(sig.setdefault(signature, len(sig)))
    return group_of, len(sig)


class _TimeModel:
    """The sparse model: start binaries ``x``, group splits ``u``, and the rows tying them."""

    def __init__(self, problem: Problem, slots: int) -> None:
        self.problem = problem
        self.slots = slots
        self.delta = _delta(problem, slots)
        self.group_of, n_groups = _node_groups(problem)
        self.free = np.zeros((3, n_groups, slots))
        for n in range(len(problem.snapshot.nodes)):
            for t in range(slots):
                c, m, g = _free_at(problem, n, problem.now + t * self.delta)
                self.free[:, self.group_of[n], t] += (c, m, g)
        self.xs: list[tuple[int, int, int, int]] = []  # (job, part, start slot, duration slots)
        self.cost: list[float] = []
        self.u_index: dict[tuple[int, int, int, int], int] = {}  # (job, part, group, slot)
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []

    def _parts(self, o: int) -> list[int]:
        problem = self.problem
        return [problem.fixed[o]] if problem.fixed[o] >= 0 else sorted(problem.options[o])

    def add_variables(self) -> int:
        """Start binaries (with their cost) and the continuous group splits; returns the count."""
        from slurmopt.optimize import schedule as sched

        problem, delta = self.problem, self.delta
        for o in range(len(problem.options)):
            first = max(0, math.ceil((problem.t0[o] - problem.now) / delta - 1e-9))
            for p in self._parts(o):
                dur = max(1, math.ceil(problem.options[o][p].runtime / delta - 1e-9))
                for s in range(first, self.slots - dur + 1):
                    term, _, pen = sched.contribution(problem, o, p, problem.now + s * delta)
                    self.xs.append((o, p, s, dur))
                    self.cost.append((term + pen) / problem.total_weight)
        k = len(self.xs)
        for o in range(len(problem.options)):
            for p in self._parts(o):
                for g in sorted({self.group_of[n] for n in problem.options[o][p].nodes}):
                    for t in range(self.slots):
                        self.u_index[(o, p, g, t)] = k
                        k += 1
        return k

    def _row(self, lo: float, hi: float) -> int:
        self.lo.append(lo)
        self.hi.append(hi)
        return len(self.lo) - 1

    def _entry(self, row: int, col: int, val: float) -> None:
        self.rows.append(row)
        self.cols.append(col)
        self.vals.append(val)

    def add_assignment_rows(self) -> None:
        """Each job starts exactly once."""
        by_job: dict[int, list[int]] = {}
        for i, (o, _, _, _) in enumerate(self.xs):
            by_job.setdefault(o, []).append(i)
        for o in range(len(self.problem.options)):
            r = self._row(1.0, 1.0)
            for i in by_job.get(o, []):
                self._entry(r, i, 1.0)

    def add_link_rows(self) -> None:
        """A job running in slot t on p takes its demand from p's groups: sum_g u = x."""
        link: dict[tuple[int, int, int], int] = {}
        for i, (o, p, s, dur) in enumerate(self.xs):
            for t in range(s, s + dur):
                if (o, p, t) not in link:
                    link[(o, p, t)] = self._row(0.0, 0.0)
                self._entry(link[(o, p, t)], i, -1.0)
        for (o, p, _g, t), k in self.u_index.items():
            if (o, p, t) not in link:
                link[(o, p, t)] = self._row(0.0, 0.0)
            self._entry(link[(o, p, t)], k, 1.0)

    def add_capacity_rows(self) -> None:
        """Per (resource, group, slot): the demand drawn there within what is free."""
        problem = self.problem
        cap_row: dict[tuple[int, int, int], int] = {}
        for (o, p, g, t), k in self.u_index.items():
            opt = problem.options[o][p]
            amounts = problem.base.demand(opt.nodes[0], opt.cpu, opt.mem, opt.gpu)
            for res, amount in enumerate(amounts):
                if amount <= 0:
                    continue
                key = (res, g, t)
                if key not in cap_row:
                    cap_row[key] = self._row(-np.inf, float(self.free[res, g, t]))
                self._entry(cap_row[key], k, float(amount * opt.n_nodes))

    def solve(self, nvar: int, time_limit: float) -> Any:
        a = coo_array((self.vals, (self.rows, self.cols)), shape=(len(self.lo), nvar)).tocsr()
        c_vec = np.zeros(nvar)
        c_vec[: len(self.xs)] = self.cost
        integrality = np.zeros(nvar)
        integrality[: len(self.xs)] = 1
        with quiet_stdout():
            return milp(
                c_vec,
                integrality=integrality,
                bounds=Bounds(0.0, 1.0),
                constraints=[LinearConstraint(a, np.array(self.lo), np.array(self.hi))],
                options={"time_limit": float(time_limit), "disp": False, "mip_rel_gap": 1e-6},
            )

    def genes(self, x: Any) -> list[int]:
        """Partition per variable job from a solution vector."""
        chosen = {self.xs[i][0]: self.xs[i][1] for i in range(len(self.xs)) if x[i] > 0.5}
        return [chosen.get(o, self.problem.default_part(o)) for o in self.problem.var_pos]


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
    if problem.config.objective == "makespan":
        raise ValueError("time-indexed MILP: makespan objective not modelled")
    t_start = time.perf_counter()
    model = _TimeModel(problem, slots)
    nvar = model.add_variables()
    if nvar > MAX_VARIABLES:
        raise ValueError(f"time-indexed MILP: {nvar} variables (max {MAX_VARIABLES})")
    model.add_assignment_rows()
    model.add_link_rows()
    model.add_capacity_rows()
    res = model.solve(nvar, time_limit)
    status = {0: "optimal", 1: "time_limit", 2: "infeasible"}.get(int(res.status), "error")
    bound = getattr(res, "mip_dual_bound", None)
    return {
        "status": status,
        "genes": None if res.x is None else model.genes(res.x),
        "objective": None if res.x is None else float(res.fun),
        "bound": None if bound is None else float(bound),
        "delta": model.delta,
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
