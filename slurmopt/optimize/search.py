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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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
