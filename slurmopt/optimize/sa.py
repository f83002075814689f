"""Simulated annealing over partition genes, on simanneal.

Moves reassign one job to another allowed partition or swap the partitions of
two jobs (each allowed in the other's). The energy is kept by the problem's
:meth:`~slurmopt.optimize.search.Assignable.incremental` evaluator, so a step
costs O(1) evaluator work plus simanneal's list copy (``copy_strategy =
"slice"``).

simanneal's ``anneal()`` loop decides acceptance after ``move()`` returns. A
rejected step shows up as a new state object (simanneal restores a copy of
the previous state); the next ``move()`` sees that and undoes the rejected
move in the evaluator first. So simanneal's own loop runs unchanged.

Determinism: simanneal draws acceptance from the global :mod:`random`; the
run seeds it and restores its state afterwards (not thread-safe: run one
annealer at a time per process). Moves use a private ``random.Random(seed)``.
The step count is fixed from the budget (``search.step_budget``), so the same
seed gives the same plan; the wall clock only stops a run early when the
machine is slower than calibrated (``stats["stopped_by"] == "deadline"``).

simanneal's constructor installs a SIGINT handler (and never restores it),
which fails outside the main thread; :class:`_Annealer` does not call it.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from typing import Any

from simanneal import Annealer

from slurmopt.optimize.search import (
    Assignable,
    Assignment,
    Budget,
    IncrementalEvaluator,
    best_of,
    cheapest_assignment,
    seed_assignments,
    step_budget,
    valid_genes,
)

log = logging.getLogger(__name__)

_CLOCK_EVERY = 1
"""Steps between clock reads: every step (a read costs ~0.1 us; a time-aware
problem's step can cost milliseconds, so sparser checks overran budgets)."""
SWAP_SHARE = 0.5
"""Share of swap moves (the rest reassign one job)."""
PREFERRED_SHARE = 0.3
"""Share of single moves aimed at one of the job's cheapest partitions."""
POLISH_COOLING = 0.1
"""Temperature factor when ``initial`` is given (polishing a good plan)."""
SOFT_SCALE = 1.0
"""Overflow price of the soft evaluator (problems with ``soft_incremental``); 0 = off."""


class _Annealer(Annealer):  # type: ignore[misc]
    copy_strategy = "slice"
    updates = 0

    def __init__(
        self,
        problem: Assignable,
        genes: list[int],
        *,
        rng: random.Random,
        deadline: float,
        clock: Any,
    ) -> None:
        # Deliberately no super().__init__(): it installs a SIGINT handler.
        self.state = genes[:]
        soft = getattr(problem, "soft_incremental", None)
        self.soft = soft is not None and SOFT_SCALE > 0
        self.ev: IncrementalEvaluator = (
            soft(genes, SOFT_SCALE)
            if soft is not None and self.soft
            else problem.incremental(genes)
        )
        self.best_feasible: list[int] | None = None
        self.best_feasible_cost = math.inf
        self.choices = [list(c) for c in problem.choices]
        self.allowed = [frozenset(c) for c in problem.choices]
        self.movable = [j for j, c in enumerate(self.choices) if len(c) > 1]
        self.n = problem.n_jobs
        self.pref = preferred_moves(problem)
        self.members: list[list[int]] = [[] for _ in range(problem.n_parts)]
        self.pos = [0] * problem.n_jobs
        for j, g in enumerate(genes):
            self.pos[j] = len(self.members[g])
            self.members[g].append(j)
        self.rng = rng
        self.deadline = deadline
        self.clock = clock
        self.undo: list[tuple[int, int]] = []
        self.moves = 0
        self.rejected = 0
        self.stopped_by = "steps"

    def energy(self) -> float:
        return float(self.ev.value)

    def _relocate(self, job: int, old: int, new: int) -> None:
        """Keep ``members`` / ``pos`` in step with a move (swap-remove, O(1))."""
        src = self.members[old]
        i = self.pos[job]
        last = src.pop()
        if last != job:
            src[i] = last
            self.pos[last] = i
        self.pos[job] = len(self.members[new])
        self.members[new].append(job)

    def _set(self, job: int, part: int) -> None:
        old = self.state[job]
        self.undo.append((job, old))
        self.ev.apply(job, part)
        self._relocate(job, old, part)
        self.state[job] = part

    def move(self) -> float:
        if self.undo and self.state is not self._last:
            # simanneal rejected the previous move: undo it in the evaluator.
            self.rejected += 1
            for job, part in reversed(self.undo):
                self._relocate(job, self._last[job] if self._last else part, part)
                self.ev.apply(job, part)
        self.undo = []
        self._last = self.state
        self.moves += 1
        if self.moves % _CLOCK_EVERY == 0 and self.clock() >= self.deadline:
            self.user_exit = True
            self.stopped_by = "deadline"
        before = self.ev.value
        rng, st = self.rng, self.state
        if not self.movable:
            return 0.0
        j1 = self.movable[rng.randrange(len(self.movable))]
        p1 = st[j1]
        pref = self.pref[j1]
        if rng.random() < SWAP_SHARE:
            # Targeted swap: j1 wants one of its preferred partitions q; someone
            # in q who may go to p1 makes room.
            q = pref[rng.randrange(len(pref))]
            inside = self.members[q]
            for _ in range(4):
                if q == p1 or not inside:
                    break
                j2 = inside[rng.randrange(len(inside))]
                if p1 in self.allowed[j2]:
                    self._set(j1, q)
                    self._set(j2, p1)
                    return self._done(before)
        if rng.random() < PREFERRED_SHARE:
            q = pref[rng.randrange(len(pref))]
        else:
            ch = self.choices[j1]
            q = ch[rng.randrange(len(ch))]
        if q == p1:
            ch = self.choices[j1]
            q = ch[rng.randrange(len(ch) - 1)]
            if q == p1:
                q = ch[-1]
        self._set(j1, q)
        return self._done(before)

    def _done(self, before: float) -> float:
        """Energy change of the move just made; remember a new best feasible state."""
        ev = self.ev
        if self.soft and ev.feasible and ev.cost < self.best_feasible_cost - 1e-12:  # type: ignore[attr-defined]
            self.best_feasible_cost = ev.cost  # type: ignore[attr-defined]
            self.best_feasible = self.state[:]
        return float(ev.value - before)

    _last: list[int] | None = None


def preferred_moves(problem: Assignable, k: int = 4) -> list[list[int]]:
    """Per job, the ``k`` cheapest allowed partitions (static form: by ``cost``).

    Problems without a ``cost`` matrix get every choice (uniform proposals).
    """
    cost = getattr(problem, "cost", None)
    out: list[list[int]] = []
    for j, ch in enumerate(problem.choices):
        if cost is None:
            out.append(list(ch))
            continue
        row = cost[j]
        out.append(sorted(ch, key=lambda p: (float(row[p]), p))[:k])
    return out


def _temperatures(
    problem: Assignable, genes: list[int], rng: random.Random, samples: int = 200
) -> tuple[float, float]:
    """Tmax/Tmin from the uphill deltas of random single moves around ``genes``.

    Tmax accepts the 20th-percentile uphill move with probability 1/3 at the
    start (the low quantile skips the capacity-penalty moves): hot enough to
    leave a seed's local optimum, cool enough to keep its structure. Tmin is
    1e-4 of Tmax.
    """
    soft = getattr(problem, "soft_incremental", None)
    ev = (
        soft(genes, SOFT_SCALE)
        if soft is not None and SOFT_SCALE > 0
        else problem.incremental(genes)
    )
    ups: list[float] = []
    movable = [j for j, c in enumerate(problem.choices) if len(c) > 1]
    for _ in range(samples if movable else 0):
        j = movable[rng.randrange(len(movable))]
        q = problem.choices[j][rng.randrange(len(problem.choices[j]))]
        d = ev.delta(j, q)
        if 0.0 < d < math.inf:
            ups.append(d)
    if not ups:
        return 1.0, 1e-3
    ups.sort()
    low = ups[len(ups) // 5]
    tmax = low / math.log(3.0)
    return tmax, max(tmax * 1e-4, 1e-9)


def start_genes(
    problem: Assignable, initial: Sequence[int] | None = None
) -> tuple[str, list[int], float]:
    """The best starting point: ``initial`` if given, else the problem's best seed.

    Returns ``(name, genes, objective)``. Without seeds, each job's first
    choice, repaired.
    """
    cands: list[tuple[str, list[int]]] = []
    if initial is not None and valid_genes(problem, initial):
        cands.append(("initial", [int(g) for g in initial]))
    else:
        cands.extend(seed_assignments(problem))
    if not cands:
        cands.append(("first-choice", problem.repair(cheapest_assignment(problem))))
    scored = [(problem.evaluate(g), i, name, g) for i, (name, g) in enumerate(cands)]
    obj, _, name, genes = min(scored)
    return name, genes, obj


def solve(
    problem: Assignable,
    *,
    seed: int,
    budget: Budget,
    initial: Sequence[int] | None = None,
    share: float = 1.0,
    hard_deadline: float | None = None,
) -> Assignment:
    """Anneal from the best seed (or ``initial``) within ``share`` of the budget.

    Returns the best feasible plan seen, never worse than the start.
    """
    t0 = budget.clock()
    deadline = t0 + budget.seconds * share * 0.97
    if hard_deadline is not None:
        deadline = min(deadline, hard_deadline)
    rng = random.Random(seed)
    start_name, genes, start_obj = start_genes(problem, initial)
    steps = step_budget(problem, budget, share=share)
    tmax, tmin = _temperatures(problem, genes, rng, samples=max(10, min(200, steps // 50)))
    if start_name == "initial":
        # An explicit start is a good plan to polish (LP rounding, the GA's
        # best): anneal cooler so its structure survives.
        tmax, tmin = tmax * POLISH_COOLING, tmin * POLISH_COOLING
    ann = _Annealer(problem, genes, rng=rng, deadline=deadline, clock=budget.clock)
    ann.Tmax, ann.Tmin, ann.steps = tmax, tmin, steps
    saved = random.getstate()
    random.seed(seed)
    try:
        best_state, best_energy = ann.anneal()
    finally:
        random.setstate(saved)
    best = list(best_state)
    if not problem.feasible(best):
        best = problem.repair(best)
    cands = [genes, best]
    if ann.best_feasible is not None:
        cands.append(ann.best_feasible)
    i, obj, ok = best_of(problem, cands)
    best = cands[i]
    wall = budget.clock() - t0
    return Assignment(
        genes=tuple(best),
        objective=obj,
        solver="sa",
        seed=seed,
        feasible=ok,
        wall_s=wall,
        stats={
            "start": start_name,
            "start_objective": start_obj,
            "steps": ann.moves,
            "step_budget": steps,
            "rejected": ann.rejected,
            "tmax": tmax,
            "tmin": tmin,
            "annealer_best": float(best_energy),
            "stopped_by": ann.stopped_by,
        },
    )
