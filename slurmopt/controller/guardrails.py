"""Guardrails: which of the optimizer's proposed changes a cycle may apply.

Pure functions over predictions; nothing here talks to Slurm. Each proposal
gets a :class:`Verdict` with the reason, accepted or not, so every decision
can be recorded and explained (``slurmopt why``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from slurmopt.controller.config import ControllerConfig
from slurmopt.model import Job, Move


@dataclass(frozen=True, slots=True)
class Proposal:
    """The optimizer's wish for one managed pending job."""

    job: Job
    allowed: tuple[str, ...]
    """Partitions the user allowed (the job may be moved only within these)."""
    current_start: float
    current_end: float
    """Predicted start and completion if the job is left as it is (Slurm's own rule)."""
    target: str
    target_gpu_type: str | None
    target_start: float
    target_end: float
    moves_so_far: int = 0
    current: str = ""
    """The partition the job starts in if left as it is (Slurm's rule over its list)."""

    @property
    def gain_s(self) -> float:
        """Expected completion gain in seconds (positive = earlier)."""
        return self.current_end - self.target_end

    @property
    def is_change(self) -> bool:
        return self.job.partitions != (self.target,) or (
            self.target_gpu_type is not None
            and self.job.request.gpu_type is not None
            and self.target_gpu_type != self.job.request.gpu_type
        )

    def move(self, reason: str) -> Move:
        return Move(
            job_id=self.job.job_id,
            from_partitions=self.job.partitions,
            to_partition=self.target,
            gpu_type=self.target_gpu_type,
            reason=reason,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    proposal: Proposal
    accepted: bool
    reason: str

    @property
    def job_id(self) -> int:
        return self.proposal.job.job_id


def judge(
    proposals: Iterable[Proposal],
    cfg: ControllerConfig,
    *,
    now: float,
    kill_switch: bool,
) -> list[Verdict]:
    """Apply every guardrail; accepted verdicts are ordered by gain, best first.

    Order of the rules: kill switch; no change needed; job not pending or held;
    target outside the allowed set; start imminent; per-job move limit;
    minimum absolute and relative gain; then the per-cycle cap, which keeps the
    largest gains.
    """
    verdicts: list[Verdict] = []
    candidates: list[Proposal] = []
    for p in proposals:
        reason = _reject_reason(p, cfg, now=now, kill_switch=kill_switch)
        if reason is None:
            candidates.append(p)
        else:
            verdicts.append(Verdict(p, False, reason))
    candidates.sort(key=lambda p: (-p.gain_s, p.job.job_id))
    for i, p in enumerate(candidates):
        if i < cfg.max_moves_per_cycle:
            verdicts.append(Verdict(p, True, f"expected completion {p.gain_s:.0f} s earlier"))
        else:
            verdicts.append(
                Verdict(p, False, f"over the limit of {cfg.max_moves_per_cycle} moves per cycle")
            )
    accepted = [v for v in verdicts if v.accepted]
    rejected = [v for v in verdicts if not v.accepted]
    return accepted + sorted(rejected, key=lambda v: v.job_id)


def _reject_reason(  # noqa: PLR0911  one return per guardrail, in the documented order
    p: Proposal, cfg: ControllerConfig, *, now: float, kill_switch: bool
) -> str | None:
    if not p.is_change:
        return "already where the plan wants it"
    if kill_switch:
        return f"kill switch {cfg.kill_switch} is present: no changes"
    if not p.job.pending:
        return f"job is {p.job.state.value}, not pending"
    if p.job.held:
        return "job is held"
    if p.target not in p.allowed:
        return f"{p.target} is outside the allowed set {','.join(p.allowed)}"
    if p.current_start - now <= cfg.imminent_s:
        return f"expected to start within {cfg.imminent_s:.0f} s where it is"
    if p.moves_so_far >= cfg.max_moves_per_job:
        return f"already moved {p.moves_so_far} times (limit {cfg.max_moves_per_job})"
    if p.gain_s < cfg.min_gain_s:
        return f"gain {p.gain_s:.0f} s is below the minimum {cfg.min_gain_s:.0f} s"
    remaining = max(p.current_end - now, 1.0)
    if p.gain_s / remaining < cfg.min_gain_ratio:
        return (
            f"gain {p.gain_s:.0f} s is {100 * p.gain_s / remaining:.1f} % of the remaining "
            f"{remaining:.0f} s, below {100 * cfg.min_gain_ratio:.0f} %"
        )
    return None
