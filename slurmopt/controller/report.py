"""What a controller cycle decided and did: per job (:class:`JobOutcome`) and per cycle."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

UNSETTLED = ("intended", "unconfirmed")
"""Outcomes whose effect in Slurm is not known yet: the next cycle reconciles them."""


@dataclass
class JobOutcome:
    """What the cycle decided and did for one managed job."""

    job_id: int
    from_partitions: tuple[str, ...]
    to_partition: str
    gpu_type: str | None
    current_start: float
    current_end: float
    target_start: float
    target_end: float
    gain_s: float
    accepted: bool
    reason: str
    outcome: str
    """applied, advised, observed, dry-run, not-pending, unsupported, failed, skipped,
    rejected; while applying: intended (recorded, not sent yet), sent (Slurm accepted,
    not read back yet), unconfirmed (slurmctld did not answer; reconciled next cycle);
    after reconciling: moved-elsewhere (someone else moved the job), gone."""
    change: str = "move"
    """move, nice or priority (the value is in ``value``)."""
    value: int | None = None
    managed_by: str = ""
    """The channel that made the job managed (``optsub:<owner>``, ``plugin``, ``site:...``)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, from_partitions=list(self.from_partitions))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobOutcome:
        """Read back :meth:`to_dict` (the journal).

        Raises:
            ValueError: a field missing or of the wrong type.
        """
        names = {f.name for f in fields(cls)}
        missing = {"job_id", "to_partition", "outcome"} - set(data)
        if missing:
            raise ValueError(f"journal entry without {sorted(missing)}")
        kw = {k: v for k, v in data.items() if k in names}
        kw["from_partitions"] = tuple(str(p) for p in kw.get("from_partitions") or ())
        if not isinstance(kw["job_id"], int) or isinstance(kw["job_id"], bool):
            raise ValueError(f"journal entry job_id {kw['job_id']!r} is not an integer")
        for k in ("current_start", "current_end", "target_start", "target_end", "gain_s"):
            kw[k] = float(kw.get(k) or 0.0)
        kw.setdefault("gpu_type", None)
        kw.setdefault("accepted", True)
        kw.setdefault("reason", "")
        return cls(**kw)


@dataclass
class CycleReport:
    """The cycle's report (``slurmopt controller --json``)."""

    started_at: float
    mode: str
    dry_run: bool
    kill_switch: bool = False
    wall_s: float = 0.0
    read_s: float = 0.0
    solve_s: float = 0.0
    apply_s: float = 0.0
    jobs_seen: int = 0
    pending: int = 0
    managed: int = 0
    proposals: int = 0
    accepted: int = 0
    applied: int = 0
    failed: int = 0
    unconfirmed: int = 0
    """Changes sent while slurmctld stopped answering: the next cycle reconciles them."""
    reconciled: int = 0
    """Changes of an earlier cycle this cycle settled from Slurm's state (the journal)."""
    total_gain_s: float = 0.0
    """Sum of expected gains of accepted changes (what enforce does or would do)."""
    solver: str = ""
    seed: int = 0
    objective_before: float | None = None
    objective_after: float | None = None
    error: str | None = None
    refusals: list[dict[str, str]] = field(default_factory=list)
    """optsub records not used for a trust reason (docs/security.md)."""
    record_error: str | None = None
    """The history database could not record this cycle (the journal keeps it)."""
    jobs: list[JobOutcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "jobs"}
        d["jobs"] = [j.to_dict() for j in self.jobs]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CycleReport:
        """Read back :meth:`to_dict` (the journal).

        Raises:
            ValueError: a field missing or of the wrong type.
        """
        names = {f.name for f in fields(cls)} - {"jobs"}
        kw = {k: v for k, v in data.items() if k in names}
        if not isinstance(kw.get("started_at"), (int, float)) or not isinstance(
            kw.get("mode"), str
        ):
            raise ValueError("journal without started_at / mode")
        jobs = data.get("jobs")
        if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
            raise ValueError("journal jobs is not a list of objects")
        kw.setdefault("dry_run", False)
        return cls(**kw, jobs=[JobOutcome.from_dict(j) for j in jobs])
