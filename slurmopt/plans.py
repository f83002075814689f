"""Plans and changes: what solvers answer and what the controller applies.

Frozen dataclasses, no I/O; :mod:`slurmopt.model` re-exports them (``from
slurmopt.model import Plan`` works) but defines them only on first use, so that
optsub's submit path, which needs none of them, does not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a plan puts one pending job, with the prediction behind it."""

    job_id: int
    partition: str
    predicted_start: float
    predicted_runtime: float
    gpu_type: str | None = None
    """GPU type the request must be rewritten to in that partition (None: unchanged)."""

    @property
    def predicted_end(self) -> float:
        return self.predicted_start + self.predicted_runtime


@dataclass(frozen=True, slots=True)
class Plan:
    """A solver's answer: one placement per job it could place."""

    placements: tuple[Placement, ...]
    objective: float
    solver: str
    seed: int | None = None
    wall_s: float = 0.0
    stats: Mapping[str, Any] = field(default_factory=dict)
    unplaced: Mapping[int, str] = field(default_factory=dict)
    """Jobs no allowed partition can ever run, with the reason."""

    def placement(self, job_id: int) -> Placement | None:
        return next((p for p in self.placements if p.job_id == job_id), None)


@dataclass(frozen=True, slots=True)
class Move:
    """Change a pending job's partition (and GPU type) within its allowed set."""

    job_id: int
    from_partitions: tuple[str, ...]
    to_partition: str
    gpu_type: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SetNice:
    job_id: int
    nice: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SetPriority:
    job_id: int
    priority: int
    reason: str = ""


Change = Move | SetNice | SetPriority
