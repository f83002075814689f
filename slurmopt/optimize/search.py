"""The contract between placement problems and the search solvers.

GA (DEAP) and SA (simanneal) search over one integer gene per job: the index
of the partition it goes to. They know nothing else about the problem; they
talk to it through :class:`Assignable` and, for fast local moves, through the
stateful :class:`IncrementalEvaluator` it hands out.

Two problems implement it:

* :class:`slurmopt.optimize.problem.Problem`, the time-aware model (start
  times from node availability profiles, list scheduling in priority order);
* :class:`slurmopt.optimize.static.StaticProblem`, the generalized assignment
  form (cost matrix + capacity per resource kind), for the exact MILP reference.

Every solver has the same signature::

    solve(problem, *, seed: int, budget: Budget) -> Assignment

and the public ``slurmopt.optimize.solve()`` turns the winning assignment into
a :class:`slurmopt.model.Plan`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class IncrementalEvaluator(Protocol):
    """A mutable current assignment whose objective is kept up to date.

    ``delta(j, p)`` must not change the state; ``apply(j, p)`` does.
    """

    @property
    def value(self) -> float:
        """Objective of the current assignment (lower is better)."""
        ...

    @property
    def assignment(self) -> list[int]:
        """A copy of the current assignment."""
        ...

    def delta(self, job: int, part: int) -> float:
        """Objective change if ``job`` moved to partition index ``part``."""
        ...

    def apply(self, job: int, part: int) -> None:
        """Move ``job`` to ``part`` and update :attr:`value`."""
        ...


class Assignable(Protocol):
    """A placement problem seen as one integer choice per job."""

    @property
    def n_jobs(self) -> int: ...

    @property
    def n_parts(self) -> int: ...

    @property
    def choices(self) -> Sequence[Sequence[int]]:
        """Allowed partition indices per job (never empty; unplaceable jobs are left out)."""
        ...

    def evaluate(self, assign: Sequence[int]) -> float:
        """Objective of a full assignment, lower is better.

        Infeasible assignments (capacity overflow in the static form) are
        scored with a penalty, never rejected, so the search can pass through
        them; :meth:`feasible` tells them apart.
        """
        ...

    def feasible(self, assign: Sequence[int]) -> bool: ...

    def repair(self, assign: list[int]) -> list[int]:
        """Return a feasible assignment close to ``assign`` (may return it unchanged)."""
        ...

    def incremental(self, assign: Sequence[int]) -> IncrementalEvaluator: ...


@dataclass(frozen=True, slots=True)
class Budget:
    """How long a solver may run. ``clock`` is injectable for tests."""

    seconds: float = 5.0
    max_evaluations: int | None = None
    clock: Callable[[], float] = time.perf_counter

    def deadline(self) -> float:
        return self.clock() + self.seconds


@dataclass(frozen=True, slots=True)
class Assignment:
    """A solver's raw answer: partition index per job, its objective and statistics."""

    genes: tuple[int, ...]
    objective: float
    solver: str
    seed: int
    feasible: bool = True
    wall_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Optional extensions of the contract (additive; solvers probe for them).
# ---------------------------------------------------------------------------


class SeededProblem(Assignable, Protocol):
    """A problem that offers ready-made assignments to start from.

    The time-aware ``Problem`` returns its greedy baselines here; the GA puts
    them in its first population, SA and ``auto`` start from the best of them.
    Genes are partition indices, as everywhere in this contract.
    """

    def initial_assignments(self) -> Mapping[str, Sequence[int]]:
        """Named seed assignments (e.g. ``{"earliest-start": [...], ...}``)."""
        ...


class Calibrated(Protocol):
    """A problem that says how many incremental ``delta()`` calls fit in a second.

    Solvers turn a time budget into a fixed number of steps with this rate, so
    the same seed gives the same answer whatever the machine's load; the wall
    clock is then only a safety stop (see :func:`step_budget`). The rate should
    be a deterministic function of the problem's size, measured once on a
    reference machine, never timed at run time.
    """

    @property
    def evals_per_second(self) -> float: ...


DEFAULT_EVALS_PER_SECOND = 20_000.0
"""Assumed ``delta()`` rate for problems that do not implement :class:`Calibrated`."""


def step_budget(problem: object, budget: Budget, *, share: float = 1.0) -> int:
    """Deterministic number of incremental steps a solver may spend.

    ``budget.max_evaluations`` wins when set. Otherwise the time budget times
    the problem's calibrated rate (:class:`Calibrated`, or
    :data:`DEFAULT_EVALS_PER_SECOND`), times ``share`` (the part of the budget
    this solver gets). Always at least 1.
    """
    if budget.max_evaluations is not None:
        return max(1, int(budget.max_evaluations * share))
    rate = getattr(problem, "evals_per_second", None)
    if not isinstance(rate, int | float) or rate <= 0:
        rate = DEFAULT_EVALS_PER_SECOND
    return max(1, int(budget.seconds * share * float(rate)))


def valid_genes(problem: Assignable, genes: Sequence[int]) -> bool:
    """True when ``genes`` has one allowed partition per job."""
    if len(genes) != problem.n_jobs:
        return False
    choices = problem.choices
    return all(g in choices[j] for j, g in enumerate(genes))


def seed_assignments(problem: Assignable) -> list[tuple[str, list[int]]]:
    """The problem's valid seed assignments (see :class:`SeededProblem`), in a stable order.

    Invalid seeds (wrong length, a partition the job may not use) are dropped
    with a debug log; a problem without ``initial_assignments`` gives ``[]``.
    """
    fn = getattr(problem, "initial_assignments", None)
    if fn is None:
        return []
    out: list[tuple[str, list[int]]] = []
    for name, genes in fn().items():
        if valid_genes(problem, genes):
            out.append((str(name), [int(g) for g in genes]))
        else:
            log.debug("seed %r dropped: not a valid assignment", name)
    return out


def cheapest_assignment(problem: Assignable) -> list[int]:
    """Each job in its first allowed partition: a valid (maybe infeasible) fallback seed."""
    return [int(c[0]) for c in problem.choices]


def best_of(problem: Assignable, candidates: Sequence[Sequence[int]]) -> tuple[int, float, bool]:
    """Index, objective and feasibility of the best candidate: feasible first, then lowest.

    Ties go to the earliest candidate. ``candidates`` must not be empty.
    """
    scored = []
    for i, genes in enumerate(candidates):
        ok = problem.feasible(genes)
        scored.append((not ok, problem.evaluate(genes), i))
    infeasible, obj, i = min(scored)
    return i, obj, not infeasible
