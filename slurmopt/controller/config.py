"""The ``[controller]`` configuration section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["observe", "advise", "enforce"]


@dataclass(frozen=True)
class ControllerConfig:
    """How the periodic controller re-places pending jobs, and its guardrails."""

    mode: Mode = field(
        default="observe",
        metadata={"help": "observe: compute and record; advise: also report; enforce: apply."},
    )
    interval_s: int = field(default=60, metadata={"help": "Seconds between cycles with --loop."})
    policy: str = field(default="auto", metadata={"help": "Placement policy (slurmopt plan)."})
    seed: int = field(default=0, metadata={"help": "Solver seed (recorded with each decision)."})
    budget_s: float = field(default=5.0, metadata={"help": "Solver time budget per cycle."})
    lock_file: str = field(
        default="",
        metadata={
            "help": "Lock taken for a whole cycle; a second run exits at once. "
            "Empty: controller.lock in the state directory."
        },
    )
    kill_switch: str = field(
        default="/etc/slurmopt/STOP",
        metadata={"help": "While this file exists, the controller changes nothing in Slurm."},
    )
    state_cache: str = field(
        default="",
        metadata={
            "help": "Cluster state written each cycle for optsub. Empty: "
            "$SLURMOPT_STATE_CACHE or /var/lib/slurmopt/state-cache.json (optsub's default)."
        },
    )
    routing_file: str = field(
        default="",
        metadata={
            "help": "Routing advice written each cycle for plugins/job_submit.lua. Empty: "
            "$SLURMOPT_ROUTING_FILE or routing.txt in the state directory."
        },
    )
    max_moves_per_cycle: int = field(
        default=20, metadata={"help": "At most this many jobs changed per cycle."}
    )
    max_moves_per_job: int = field(
        default=3, metadata={"help": "At most this many moves of one job over its life."}
    )
    min_gain_s: float = field(
        default=300.0,
        metadata={"help": "Minimum expected completion gain (seconds) for a move."},
    )
    min_gain_ratio: float = field(
        default=0.1,
        metadata={"help": "Minimum gain relative to the job's remaining expected completion."},
    )
    imminent_s: float = field(
        default=60.0,
        metadata={"help": "Never move a job expected to start within this many seconds."},
    )
    manage_all: bool = field(
        default=False,
        metadata={
            "help": "Treat every pending job as opted in (otherwise only optsub, the plugin, "
            "or a site rule opt a job in)."
        },
    )
    opt_in_accounts: tuple[str, ...] = field(
        default=(), metadata={"help": "Site rule: pending jobs of these accounts are managed."}
    )
    opt_in_comment_tag: str = field(
        default="slurmopt:auto",
        metadata={"help": "Site rule: jobs whose comment contains this tag are managed."},
    )
    nice_band: tuple[int, int] = field(
        default=(0, 0),
        metadata={"help": "Nice values the controller may set, [low, high]; [0, 0] disables."},
    )
    absolute_priority: bool = field(
        default=False,
        metadata={
            "help": "Allow setting an absolute priority (stops multifactor aging for the job; "
            "re-applied after a release)."
        },
    )
    syslog: bool = field(default=False, metadata={"help": "Also log to syslog."})

    def __post_init__(self) -> None:
        if self.mode not in ("observe", "advise", "enforce"):
            raise ValueError(f"mode must be observe, advise or enforce, not {self.mode!r}")
        if self.interval_s < 1:
            raise ValueError("interval_s must be at least 1")
        if self.max_moves_per_cycle < 0 or self.max_moves_per_job < 0:
            raise ValueError("move limits must not be negative")
        if self.nice_band[0] > self.nice_band[1]:
            raise ValueError("nice_band must be [low, high] with low <= high")
