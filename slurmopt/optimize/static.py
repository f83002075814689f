"""The static generalized assignment form of the placement problem.

ARCHITECTURE.md, "The placement problem": jobs are indivisible and partitions
have finite capacity, so the static form is a generalized assignment problem
(GAP)::

    min  sum_jp cost[j][p] x_jp
    s.t. sum_p x_jp = 1                               for every job j
         sum_j demand[k][j][p] x_jp <= capacity[k][p]  for every kind k, partition p
         x_jp in {0, 1}, x_jp = 0 where cost[j][p] is inf (not allowed)

Demand may differ per partition (GPU-seconds depend on the partition's speed).
:class:`StaticProblem` implements :class:`~slurmopt.optimize.search.Assignable`
so GA, SA and ``auto`` run on it unchanged, and :mod:`slurmopt.optimize.milp`
solves it exactly for reference. :func:`random_instance` builds the instances
of benchmark 1 (issue 3).

Capacity overflow is not rejected but priced: each overflowing (kind,
partition) pair costs ``big`` plus ``unit[k]`` per unit of overflow, where
``big`` exceeds any single job's cost swing and ``unit[k] = big / smallest
demand of kind k``; so removing one job from an overflowing partition always
pays more than it can cost.

numpy is imported here; this module is loaded lazily (never from
``slurmopt.optimize.__init__``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_TOL = 1e-9
STEP_SECONDS = (15e-6, 15e-9)
"""Seconds per local-search step on the reference machine (2-core VM): fixed + per job.

``scripts/bench/optimality.py --calibrate`` measured SA at 25.6 us/step on
200 jobs and 43.8 us/step on 1000 jobs at load average 4.3 (fit: 21 us +
23 ns/job), and 14.9 / 19.4 us/step at load average 1.3 (fit: 14 us +
5.6 ns/job); these constants sit in between. Solvers derive a deterministic step count from them
(``search.step_budget``) at 65 % of the rate they imply, leaving room for a
loaded machine; a step costs an evaluator move plus simanneal's O(J) list
copy."""


def _over(load: float, cap: float) -> float:
    """Overflow of ``load`` beyond ``cap``, with a small relative tolerance."""
    excess = load - cap
    return excess if excess > _TOL * (1.0 + abs(cap)) else 0.0


class StaticProblem:
    """A GAP instance: cost matrix, per-kind demand and capacity.

    Args:
        cost: ``(J, P)`` costs; ``inf`` (or nan) where a job may not go.
        demand: ``(K, J)`` or ``(K, J, P)`` non-negative demand per kind.
        capacity: ``(K, P)`` capacity per kind and partition.
        kinds: names of the K resource kinds (for reports).
        part_names: names of the P partitions (for reports).

    Raises:
        ValueError: on inconsistent shapes or a job with no allowed partition.
    """

    def __init__(
        self,
        cost: npt.ArrayLike,
        demand: npt.ArrayLike,
        capacity: npt.ArrayLike,
        *,
        kinds: Sequence[str] | None = None,
        part_names: Sequence[str] | None = None,
    ) -> None:
        c = np.array(cost, dtype=np.float64)
        c[np.isnan(c)] = np.inf
        if c.ndim != 2:
            raise ValueError("cost must be a (jobs, partitions) matrix")
        n_jobs, n_parts = c.shape
        d = np.array(demand, dtype=np.float64)
        if d.ndim == 2:
            d = np.repeat(d[:, :, None], n_parts, axis=2)
        cap = np.array(capacity, dtype=np.float64)
        if d.ndim != 3 or d.shape[1:] != (n_jobs, n_parts) or cap.shape != (d.shape[0], n_parts):
            raise ValueError("demand must be (K, J) or (K, J, P) and capacity (K, P)")
        if (d < 0).any():
            raise ValueError("demand must be non-negative")
        self.cost: FloatArray = c
        self.demand: FloatArray = d
        self.capacity: FloatArray = cap
        self.kinds: tuple[str, ...] = tuple(kinds or (f"k{i}" for i in range(d.shape[0])))
        self.part_names: tuple[str, ...] = tuple(part_names or (f"p{i}" for i in range(n_parts)))
        allowed = np.isfinite(c)
        self._choices: tuple[tuple[int, ...], ...] = tuple(
            tuple(int(p) for p in np.flatnonzero(allowed[j])) for j in range(n_jobs)
        )
        self._allowed: tuple[frozenset[int], ...] = tuple(frozenset(c) for c in self._choices)
        if any(not ch for ch in self._choices):
            raise ValueError("every job needs at least one allowed partition")
        finite = np.where(allowed, c, np.nan)
        swing = float(np.nanmax(np.nanmax(finite, axis=1) - np.nanmin(finite, axis=1)))
        self.big: float = max(1.0, 2.0 * swing + 1.0)
        self.unit: tuple[float, ...] = tuple(
            self.big / float(np.min(dk[dk > 0])) if (dk > 0).any() else 0.0 for dk in d
        )
        # Python lists for the incremental evaluator (numpy scalar access is slow).
        self._cost_l: list[list[float]] = c.tolist()
        self._dem_l: list[list[list[float]]] = d.tolist()
        self._cap_l: list[list[float]] = cap.tolist()
        self._rows = np.arange(n_jobs)
        self._seeds: dict[str, list[int]] | None = None

    # -- Assignable ---------------------------------------------------------
    @property
    def n_jobs(self) -> int:
        return int(self.cost.shape[0])

    @property
    def n_parts(self) -> int:
        return int(self.cost.shape[1])

    @property
    def n_kinds(self) -> int:
        return int(self.demand.shape[0])

    @property
    def choices(self) -> Sequence[Sequence[int]]:
        return self._choices

    @property
    def evals_per_second(self) -> float:
        """Calibrated local-search steps per second (see :data:`STEP_SECONDS`)."""
        fixed, per_job = STEP_SECONDS
        kinds = max(1.0, self.n_kinds / 2.0)
        return 0.65 / (fixed * kinds + per_job * self.n_jobs)

    def loads(self, assign: Sequence[int]) -> FloatArray:
        """``(K, P)`` load of each kind in each partition under ``assign``."""
        a = np.asarray(assign, dtype=np.int64)
        out = np.empty_like(self.capacity)
        for k in range(self.n_kinds):
            out[k] = np.bincount(a, weights=self.demand[k, self._rows, a], minlength=self.n_parts)
        return out

    def assignment_cost(self, assign: Sequence[int]) -> float:
        """Sum of costs, without the overflow penalty (``inf`` for a disallowed gene)."""
        a = np.asarray(assign, dtype=np.int64)
        return float(self.cost[self._rows, a].sum())

    def penalty(self, assign: Sequence[int]) -> float:
        """Price of the capacity overflow of ``assign`` (0 when feasible)."""
        excess = self.loads(assign) - self.capacity
        over = excess > _TOL * (1.0 + np.abs(self.capacity))
        if not over.any():
            return 0.0
        unit = np.asarray(self.unit)[:, None]
        return float(over.sum() * self.big + (np.where(over, excess, 0.0) * unit).sum())

    def evaluate(self, assign: Sequence[int]) -> float:
        return self.assignment_cost(assign) + self.penalty(assign)

    def feasible(self, assign: Sequence[int]) -> bool:
        a = np.asarray(assign, dtype=np.int64)
        if a.shape != (self.n_jobs,) or (a < 0).any() or (a >= self.n_parts).any():
            return False
        if not np.isfinite(self.cost[self._rows, a]).all():
            return False
        return self.penalty(assign) == 0.0

    def incremental(self, assign: Sequence[int]) -> StaticEvaluator:
        return StaticEvaluator(self, assign)

    def soft_incremental(self, assign: Sequence[int], scale: float = 1.0) -> StaticEvaluator:
        """An evaluator with a soft, linear overflow price (for annealing).

        No fixed charge per overflowing partition, and ``scale`` x the
        median cost per unit of demand per unit of overflow: the search may
        cross slightly infeasible states. Its ``value`` is not
        :meth:`evaluate`'s; use its ``feasible`` and ``cost``.
        """
        rows = self._rows
        best = np.argmin(self.cost, axis=1)
        units = []
        for k in range(self.n_kinds):
            d = self.demand[k, rows, best]
            ok = d > 0
            units.append(
                float(np.median(self.cost[rows, best][ok] / d[ok])) * scale if ok.any() else 0.0
            )
        return StaticEvaluator(self, assign, unit=units, big=0.0)

    def repair(self, assign: list[int]) -> list[int]:
        """Move jobs out of overflowing partitions at the least cost per unit relieved.

        Disallowed genes first go to the job's cheapest partition. Best effort:
        if no move can relieve an overflow, the result may stay infeasible
        (check :meth:`feasible`).
        """
        from slurmopt.optimize.static_repair import repair

        return repair(self, list(assign))

    def initial_assignments(self) -> dict[str, list[int]]:
        """Greedy seeds: cheapest partition per job then repaired, and regret greedy (cached)."""
        if self._seeds is None:
            cheapest = [
                min(ch, key=self._cost_l[j].__getitem__) for j, ch in enumerate(self._choices)
            ]
            self._seeds = {
                "cheapest-repaired": self.repair(cheapest),
                "regret": self.regret_greedy(rank=5),
            }
        return {k: list(v) for k, v in self._seeds.items()}

    def regret_greedy(self, batches: int = 20, rank: int = 1) -> list[int]:
        """Martello-Toth style greedy: the jobs that lose most if denied their best go first.

        Regret = the largest of the next ``rank`` cheapest costs minus the
        cheapest, among the partitions where the job still fits (infinite with
        one), per unit of the room the job takes in its cheapest partition
        (with many near-identical partitions the second cheapest says little,
        hence ``rank``). Jobs are placed in decreasing
        regret, each in its cheapest fitting partition; regrets are recomputed
        ``batches`` times. A job that fits nowhere goes to its cheapest
        partition and the result is repaired.
        """
        n, parts = self.n_jobs, self.n_parts
        genes = [-1] * n
        left = self.capacity.copy()
        todo = np.ones(n, dtype=bool)
        step = max(1, math.ceil(n / batches))
        tol = _TOL * (1.0 + np.abs(self.capacity))
        while todo.any():
            idx = np.flatnonzero(todo)
            fits = np.all(self.demand[:, idx, :] <= left[:, None, :] + tol[:, None, :], axis=0)
            c = np.where(fits, self.cost[idx], np.inf)
            srt = np.sort(c, axis=1)
            best = srt[:, 0]
            if parts > 1:
                tier = srt[:, 1 : rank + 1]
                with np.errstate(invalid="ignore"):
                    second = np.where(np.isfinite(tier), tier, np.nan)
                    second = np.where(
                        np.isnan(second).all(axis=1),
                        np.inf,
                        np.nanmax(np.where(np.isnan(second), -np.inf, second), axis=1),
                    )
            else:
                second = np.full(len(idx), np.inf)
            arg = np.argmin(c, axis=1)
            size = (self.demand[:, idx, arg] / np.maximum(left[:, arg], 1e-12)).max(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                regret = np.where(
                    np.isfinite(second), (second - best) / np.maximum(size, 1e-12), np.inf
                )
            regret = np.where(np.isfinite(best), regret, -1.0)
            order = idx[np.lexsort((idx, -regret))][:step]
            for j in order:
                jj = int(j)
                row = self.demand[:, jj, :]
                ok = [p for p in self._choices[jj] if (row[:, p] <= left[:, p] + tol[:, p]).all()]
                p = min(ok or self._choices[jj], key=lambda q: (self._cost_l[jj][q], q))
                genes[jj] = p
                left[:, p] -= row[:, p]
                todo[jj] = False
        return genes if self.feasible(genes) else self.repair(genes)

    def static_form(self) -> StaticProblem:
        """The static form of a static problem is itself."""
        return self


class StaticEvaluator:
    """Incremental objective of a :class:`StaticProblem` assignment: O(K) per move."""

    def __init__(
        self,
        problem: StaticProblem,
        assign: Sequence[int],
        *,
        unit: Sequence[float] | None = None,
        big: float | None = None,
    ) -> None:
        self._p = problem
        self._a = [int(g) for g in assign]
        self._cost = problem._cost_l
        self._dem = problem._dem_l
        self._cap = problem._cap_l
        self._unit = tuple(problem.unit if unit is None else unit)
        self._big = problem.big if big is None else big
        self._kr = range(problem.n_kinds)
        self._load = problem.loads(self._a).tolist()
        self._sum = sum(self._cost[j][g] for j, g in enumerate(self._a))
        self._pen = sum(
            self._pen_at(k, p, self._load[k][p]) for k in self._kr for p in range(problem.n_parts)
        )
        self._nover = sum(
            1
            for k in self._kr
            for p in range(problem.n_parts)
            if _over(self._load[k][p], self._cap[k][p]) > 0.0
        )

    @property
    def value(self) -> float:
        return self._sum + self._pen

    @property
    def assignment(self) -> list[int]:
        return list(self._a)

    def part_of(self, job: int) -> int:
        """Current partition of ``job``."""
        return self._a[job]

    def _pen_at(self, k: int, p: int, load: float) -> float:
        o = _over(load, self._cap[k][p])
        return self._big + self._unit[k] * o if o > 0.0 else 0.0

    def delta(self, job: int, part: int) -> float:
        cur = self._a[job]
        if part == cur:
            return 0.0
        d = self._cost[job][part] - self._cost[job][cur]
        for k in self._kr:
            dk = self._dem[k][job]
            lk = self._load[k]
            a, b = dk[cur], dk[part]
            d += self._pen_at(k, cur, lk[cur] - a) - self._pen_at(k, cur, lk[cur])
            d += self._pen_at(k, part, lk[part] + b) - self._pen_at(k, part, lk[part])
        return d

    def apply(self, job: int, part: int) -> None:
        cur = self._a[job]
        if part == cur:
            return
        dlt = self.delta(job, part)
        self._sum += self._cost[job][part] - self._cost[job][cur]
        self._pen += dlt - (self._cost[job][part] - self._cost[job][cur])
        if abs(self._pen) < 1e-7:
            self._pen = 0.0
        for k in self._kr:
            dk = self._dem[k][job]
            lk, ck = self._load[k], self._cap[k]
            was = (_over(lk[cur], ck[cur]) > 0.0) + (_over(lk[part], ck[part]) > 0.0)
            lk[cur] -= dk[cur]
            lk[part] += dk[part]
            now = (_over(lk[cur], ck[cur]) > 0.0) + (_over(lk[part], ck[part]) > 0.0)
            self._nover += now - was
        if self._nover == 0:
            self._pen = 0.0
        self._a[job] = part

    def swap_delta(self, j1: int, j2: int) -> float:
        """Objective change if ``j1`` and ``j2`` exchanged partitions (not applied)."""
        p1, p2 = self._a[j1], self._a[j2]
        if p1 == p2:
            return 0.0
        c = self._cost
        d = c[j1][p2] + c[j2][p1] - c[j1][p1] - c[j2][p2]
        for k in self._kr:
            d1, d2, lk = self._dem[k][j1], self._dem[k][j2], self._load[k]
            n1 = lk[p1] - d1[p1] + d2[p1]
            n2 = lk[p2] - d2[p2] + d1[p2]
            d += self._pen_at(k, p1, n1) - self._pen_at(k, p1, lk[p1])
            d += self._pen_at(k, p2, n2) - self._pen_at(k, p2, lk[p2])
        return d

    @property
    def feasible(self) -> bool:
        """True when the current assignment overflows nothing."""
        return self._nover == 0

    @property
    def cost(self) -> float:
        """Sum of costs of the current assignment, without penalty."""
        return self._sum


def random_instance(
    n_jobs: int,
    n_parts: int,
    *,
    seed: int,
    slack: float = 0.02,
    restrict: float = 0.3,
) -> StaticProblem:
    """A benchmark-1 instance: tight capacity, GPUs 1/2/4/8, lognormal runtimes.

    Partitions get a GPU model (speed factor), 4 or 8 GPUs per node and 2-16
    nodes; jobs get a type whose affinity to each GPU model scales its speed.
    Cost = job weight x runtime in hours on that partition; demand =
    GPU-seconds and CPU-seconds. Capacity is the load of a hidden random
    reference plan (partitions drawn in proportion to their GPU count) plus
    ``slack`` (CPU: 25 % more), so every instance is feasible, and tight: the
    fast partitions hold far less than the jobs would like to put there.

    Args:
        n_jobs: number of jobs J.
        n_parts: number of partitions P.
        seed: the instance's seed (same seed, same instance).
        slack: capacity headroom over the reference plan's load.
        restrict: share of jobs whose user listed only a few partitions.
    """
    rng = np.random.default_rng(seed)
    models = np.array([0.35, 0.5, 0.6, 0.8, 1.0, 1.6, 0.9])  # T4 A10 V100 L40 A100 H100 MI250
    n_types = 4
    affinity = rng.lognormal(0.0, 0.25, size=(n_types, len(models)))
    pmodel = rng.integers(0, len(models), size=n_parts)
    per_node = rng.choice([4, 8], size=n_parts)
    per_node[0] = 8  # 8-GPU jobs always fit somewhere
    nodes = rng.integers(2, 17, size=n_parts)
    pgpus = (per_node * nodes).astype(np.float64)

    jtype = rng.integers(0, n_types, size=n_jobs)
    gpus = rng.choice([1, 2, 4, 8], size=n_jobs, p=[0.5, 0.25, 0.15, 0.1])
    cpus = gpus * rng.choice([4, 8, 16], size=n_jobs)
    ref = np.clip(rng.lognormal(math.log(3600.0), 1.0, size=n_jobs), 60.0, 7 * 86400.0)
    weight = rng.uniform(0.5, 2.0, size=n_jobs)
    noise = rng.lognormal(0.0, 0.05, size=(n_jobs, n_parts))
    speed = models[pmodel][None, :] * affinity[jtype][:, pmodel] * noise
    runtime = ref[:, None] / speed
    allowed = per_node[None, :] >= gpus[:, None]
    for j in np.flatnonzero(rng.random(n_jobs) < restrict):
        ok = np.flatnonzero(allowed[j])
        keep = rng.choice(ok, size=int(rng.integers(1, max(2, len(ok) // 3 + 1))), replace=False)
        allowed[j] = False
        allowed[j, keep] = True
    cost = np.where(allowed, weight[:, None] * runtime / 3600.0, np.inf)
    dem_gpu = gpus[:, None] * runtime
    dem_cpu = cpus[:, None] * runtime
    # A hidden reference plan (each job in an allowed partition drawn by size)
    # fixes the capacity: feasible by construction, tight where jobs crowd.
    ref_part = np.empty(n_jobs, dtype=np.int64)
    for jj in range(n_jobs):
        ok = np.flatnonzero(allowed[jj])
        w = pgpus[ok] / pgpus[ok].sum()
        ref_part[jj] = ok[int(rng.choice(len(ok), p=w))]
    rows = np.arange(n_jobs)
    cap = np.stack(
        [
            np.bincount(ref_part, weights=dem_gpu[rows, ref_part], minlength=n_parts),
            np.bincount(ref_part, weights=dem_cpu[rows, ref_part], minlength=n_parts),
        ]
    )
    cap = cap * (1.0 + slack) * np.array([[1.0], [1.25]])
    # An empty partition still gets a little room (one median job's worth).
    floor = np.median(dem_gpu[np.isfinite(cost)]), np.median(dem_cpu[np.isfinite(cost)])
    cap = np.maximum(cap, np.array(floor)[:, None])
    return StaticProblem(
        cost,
        np.stack([dem_gpu, dem_cpu]),
        cap,
        kinds=("gpu_s", "cpu_s"),
        part_names=[f"p{i}" for i in range(n_parts)],
    )
