"""Configuration of the placement problem (the ``[optimize]`` section).

Standard library only: optsub builds a :class:`~slurmopt.optimize.problem.Problem`
on its submit path.

Speed convention (see :mod:`slurmopt.optimize.problem`): speed factors are
relative to a reference of 1.0 (by default the V100, and the ``cpu`` entry for
CPU-only jobs). A job's runtime on partition ``p`` is its reference runtime
divided by ``speed(p)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from slurmopt.model import Job

Objective = Literal["completion", "wait", "makespan"]

DEFAULT_GPU_SPEED: dict[str, float] = {
    "h200": 3.5,
    "h100": 3.0,
    "a100": 2.0,
    "l40s": 1.6,
    "a10": 1.1,
    "v100": 1.0,
    "v100m32": 1.0,
    "v100m16": 1.0,
    "p100": 0.6,
    "t4": 0.5,
    "cpu": 1.0,
}


@dataclass(frozen=True)
class OptimizeConfig:
    """Everything that shapes the placement problem, with its help text."""

    gpu_speed: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_GPU_SPEED),
        metadata={
            "help": "Speed factor per GPU type (lower-case Slurm GRES type), relative to "
            "1.0; the 'cpu' entry is the reference for CPU-only jobs. Types not listed "
            "keep their built-in default (h100 3.0, a100 2.0, v100 1.0, t4 0.5, ...); "
            "types nobody knows get unknown_gpu_speed."
        },
    )
    unknown_gpu_speed: float = field(
        default=1.0, metadata={"help": "Speed factor of a GPU type missing from gpu_speed."}
    )
    partition_speed: Mapping[str, float] = field(
        default_factory=dict,
        metadata={
            "help": "Speed factor per partition name; overrides the GPU-type speed "
            "(use it for CPU partitions of different generations)."
        },
    )
    affinity: Mapping[str, Mapping[str, float]] = field(
        default_factory=dict,
        metadata={
            "help": "Per job type, a multiplier per GPU type (job type -> gpu type -> "
            "factor), e.g. {llm = {h100 = 1.5}} when LLM jobs gain more from H100s."
        },
    )
    job_type_rules: Mapping[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "Job type rules: job type -> regular expression searched in the job "
            "name and comment (first match in name order wins). A comment "
            "'slurmopt:type=NAME' always wins."
        },
    )
    objective: Objective = field(
        default="completion",
        metadata={
            "help": "completion: weighted mean expected completion time (start + runtime "
            "- submit); wait: weighted mean wait (start - submit); makespan: the last "
            "predicted end, from now."
        },
    )
    weight_by: Literal["uniform", "gpus", "nodes"] = field(
        default="uniform",
        metadata={"help": "Per-job weight in the mean: 1, the job's GPU count, or its node count."},
    )
    account_weight: Mapping[str, float] = field(
        default_factory=dict,
        metadata={"help": "Extra multiplier of a job's weight per account (default 1.0)."},
    )
    window: int = field(
        default=100,
        metadata={
            "help": "Pending jobs considered per partition, in priority order (as Slurm's "
            "bf_max_job_test). Jobs outside every window keep their current partition "
            "and still occupy capacity."
        },
    )
    move_penalty_s: float = field(
        default=300.0,
        metadata={
            "help": "Cost in seconds (per job, weighted) of placing a job outside the "
            "partitions it currently lists: hysteresis against needless moves."
        },
    )
    preempt_penalty_s: float = field(
        default=1800.0,
        metadata={
            "help": "Cost in seconds (per job, weighted) of placing a job in a partition "
            "with its own PreemptMode (REQUEUE, CANCEL, SUSPEND...), where it may be "
            "preempted: the work it may lose or wait for again."
        },
    )
    use_predictions: bool = field(
        default=True,
        metadata={
            "help": "Use runtime predictions passed in (job id -> seconds) instead of the "
            "time limit as the expected runtime, for pending and running jobs."
        },
    )
    limit_ratio: Mapping[str, float] = field(
        default_factory=dict,
        metadata={
            "help": "Share of its time limit a running job without a runtime prediction is "
            "expected to use, per partition ('*': any partition), in (0, 1]. The controller "
            "learns it from the history's finished jobs ([history] use_predictions: the "
            "90th percentile of runtime / time limit of the last 500 jobs, per partition "
            "with at least 20 of them and site-wide) and hands it to optsub through the state "
            "cache; what it learns replaces what is configured here (a site's prior for a "
            "new database). A job that outlives its share is expected to run as long again "
            "as it has so far, never past its limit. Empty: the time limit."
        },
    )
    default_runtime_s: int = field(
        default=3600,
        metadata={"help": "Runtime guess in seconds for a job with neither limit nor prediction."},
    )
    typed_gpu_rewritable: bool = field(
        default=False,
        metadata={
            "help": "Whether a typed GPU request (--gres=gpu:a100:1) may be rewritten to "
            "another GPU type by default. Callers (optsub, the controller) pass the jobs "
            "whose users allowed it; untyped requests may always go anywhere."
        },
    )

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if self.move_penalty_s < 0:
            raise ValueError("move_penalty_s must be >= 0")
        if self.preempt_penalty_s < 0:
            raise ValueError("preempt_penalty_s must be >= 0")
        if self.default_runtime_s <= 0:
            raise ValueError("default_runtime_s must be > 0")
        for name, ratio in self.limit_ratio.items():
            if not 0 < ratio <= 1:
                raise ValueError(f"limit_ratio of {name!r} must be in (0, 1]")
        for name, speed in {**self.gpu_speed, **self.partition_speed}.items():
            if speed <= 0:
                raise ValueError(f"speed of {name!r} must be > 0")
        for pattern in self.job_type_rules.values():
            re.compile(pattern)

    def speed_of_gpu(self, gpu_type: str) -> float:
        """Speed factor of a GPU type (``""`` or ``"cpu"``: the CPU reference)."""
        key = (gpu_type or "cpu").lower()
        if key in self.gpu_speed:
            return float(self.gpu_speed[key])
        return float(DEFAULT_GPU_SPEED.get(key, self.unknown_gpu_speed))

    def job_type(self, job: Job) -> str | None:
        """The job's type for :attr:`affinity`: comment tag, then the first matching rule."""
        comment = job.comment or ""
        tag = re.search(r"slurmopt:type=([\w.-]+)", comment)
        if tag:
            return tag.group(1)
        text = f"{job.name}\n{comment}"
        for jtype in sorted(self.job_type_rules):
            if re.search(self.job_type_rules[jtype], text):
                return jtype
        return None

    def affinity_of(self, job_type: str | None, gpu_type: str) -> float:
        """Multiplier of the speed for a job type on a GPU type (1.0 by default)."""
        if job_type is None:
            return 1.0
        return float(self.affinity.get(job_type, {}).get((gpu_type or "cpu").lower(), 1.0))
