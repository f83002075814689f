"""The normalized cluster model shared by every part of slurmopt.

Frozen dataclasses, no I/O. Every Slurm version's output is turned into these
types by :mod:`slurmopt.slurm`; the optimizer, the controller, optsub, the
simulator and the history database read nothing else.

Conventions:

* times are UNIX epoch seconds (``int``); ``None`` means unknown / not set;
* durations are seconds (``int``); ``None`` on a limit means unlimited;
* memory is in MiB (Slurm's "M");
* GPU counts are kept per GPU type in a ``dict[str, int]``. The key ``""`` is an
  untyped GPU (``--gres=gpu:2``). The dicts are never mutated after
  construction.

The JSON form (:meth:`Snapshot.to_dict` / :meth:`Snapshot.from_dict`) is
versioned by :data:`SNAPSHOT_FORMAT` and documented in
``docs/snapshot-format.md``.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
"""Version of the snapshot JSON schema. Bump on any incompatible change."""

PLUGIN_ALLOWED_TAG = "slurmopt:allowed="
"""Prefix ``plugins/job_submit.lua`` writes into admin_comment with the job's allowed set."""


class NodeState(enum.StrEnum):
    """Base state of a node; flags such as DRAIN are kept apart."""

    IDLE = "IDLE"
    MIXED = "MIXED"
    ALLOCATED = "ALLOCATED"
    COMPLETING = "COMPLETING"
    DOWN = "DOWN"
    ERROR = "ERROR"
    FUTURE = "FUTURE"
    UNKNOWN = "UNKNOWN"


class JobState(enum.StrEnum):
    """Base state of a job."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    CONFIGURING = "CONFIGURING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    REQUEUED = "REQUEUED"
    RESIZING = "RESIZING"
    REVOKED = "REVOKED"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    STOPPED = "STOPPED"
    UNKNOWN = "UNKNOWN"

    @property
    def active(self) -> bool:
        """True while the job holds or waits for resources."""
        return self in _ACTIVE_JOB_STATES


_ACTIVE_JOB_STATES = frozenset(
    {
        JobState.PENDING,
        JobState.RUNNING,
        JobState.SUSPENDED,
        JobState.COMPLETING,
        JobState.CONFIGURING,
        JobState.REQUEUED,
        JobState.RESIZING,
        JobState.STOPPED,
    }
)

# Node flags that make a node unusable for new work.
UNAVAILABLE_NODE_FLAGS = frozenset(
    {
        "DRAIN",
        "DRAINED",
        "DRAINING",
        "FAIL",
        "FAILING",
        "NOT_RESPONDING",
        "MAINTENANCE",
        "POWERED_DOWN",
        "POWER_DOWN",
        "POWERING_DOWN",
        "REBOOT_REQUESTED",
        "REBOOT_ISSUED",
        "RESERVED",
    }
)


_E = TypeVar("_E", bound=enum.StrEnum)


def parse_enum(kind: type[_E], value: str, *, what: str) -> _E:
    """Map a Slurm state string to ``kind``; unknown values become UNKNOWN with a warning."""
    try:
        return kind(value.upper())
    except ValueError:
        log.warning("unknown %s state %r from Slurm: treated as UNKNOWN", what, value)
        return kind("UNKNOWN")


@dataclass(frozen=True, slots=True)
class Node:
    """One compute node as Slurm reports it."""

    name: str
    state: NodeState
    flags: frozenset[str] = frozenset()
    cpus: int = 0
    cpus_alloc: int = 0
    memory_mb: int = 0
    memory_alloc_mb: int = 0
    gpus: Mapping[str, int] = field(default_factory=dict)
    """GPUs by type, as configured (``{"a100": 4}``)."""
    gpus_used: Mapping[str, int] = field(default_factory=dict)
    """GPUs by type in use by jobs."""
    features: tuple[str, ...] = ()
    active_features: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    reason: str | None = None
    weight: int = 1
    extra: str | None = None
    """Slurm's free-form ``Extra`` / comment field (node telemetry may live here)."""

    @property
    def available(self) -> bool:
        """True when the node can take new work (up, not drained or failing)."""
        if self.state in (NodeState.DOWN, NodeState.ERROR, NodeState.FUTURE, NodeState.UNKNOWN):
            return False
        return not (self.flags & UNAVAILABLE_NODE_FLAGS)

    @property
    def drained(self) -> bool:
        """True when the node carries a DRAIN flag (draining or drained)."""
        return bool(self.flags & {"DRAIN", "DRAINED", "DRAINING"})

    @property
    def gpu_total(self) -> int:
        return sum(self.gpus.values())

    @property
    def gpu_free(self) -> dict[str, int]:
        """Free GPUs per type (never negative)."""
        return {t: max(0, n - self.gpus_used.get(t, 0)) for t, n in self.gpus.items()}

    @property
    def cpus_free(self) -> int:
        return max(0, self.cpus - self.cpus_alloc)

    @property
    def memory_free_mb(self) -> int:
        return max(0, self.memory_mb - self.memory_alloc_mb)


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition and the limits Slurm shows for it."""

    name: str
    nodes: tuple[str, ...]
    state: str = "UP"
    """UP, DOWN, DRAIN or INACTIVE."""
    is_default: bool = False
    max_time_s: int | None = None
    """MaxTime in seconds; None is UNLIMITED."""
    default_time_s: int | None = None
    """DefaultTime in seconds; None means a job without ``-t`` gets MaxTime."""
    max_nodes: int | None = None
    min_nodes: int = 0
    priority_tier: int = 1
    priority_job_factor: int = 1
    allow_accounts: tuple[str, ...] | None = None
    """None means ALL."""
    deny_accounts: tuple[str, ...] = ()
    allow_groups: tuple[str, ...] | None = None
    allow_qos: tuple[str, ...] | None = None
    deny_qos: tuple[str, ...] = ()
    def_mem_per_cpu_mb: int | None = None
    def_mem_per_node_mb: int | None = None
    max_mem_per_node_mb: int | None = None
    max_cpus_per_node: int | None = None
    oversubscribe: str = "NO"
    total_cpus: int = 0
    total_nodes: int = 0

    @property
    def up(self) -> bool:
        return self.state == "UP"


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a job asked for (normalized; None where the user did not say)."""

    nodes_min: int = 1
    nodes_max: int | None = None
    ntasks: int = 1
    cpus_per_task: int = 1
    cpus_min: int = 1
    """Total CPUs Slurm will allocate at least (``num_cpus`` / ``MinCPUsNode`` x nodes)."""
    mem_per_node_mb: int | None = None
    mem_per_cpu_mb: int | None = None
    mem_per_gpu_mb: int | None = None
    gpus_per_node: int = 0
    gpus_per_job: int = 0
    gpus_per_task: int = 0
    gpu_type: str | None = None
    """Requested GPU type, None if untyped."""
    gres: str | None = None
    """The raw GRES / TRES-per-node request as Slurm printed it (``gres/gpu:a100:2``)."""
    tres_per_job: str | None = None
    """The raw TRES-per-job request (``gres/gpu:2`` from ``--gpus=2``), ``gres/`` spelling."""
    tres_per_task: str | None = None
    """The raw TRES-per-task request (``gres/gpu:1``) without ``cpu=N`` (see cpus_per_task)."""
    constraint: str | None = None
    time_limit_s: int | None = None
    """None: no limit given (the partition's default applies, or unlimited)."""
    time_min_s: int | None = None
    exclusive: bool = False

    @property
    def wants_gpus(self) -> bool:
        return (self.gpus_per_node + self.gpus_per_job + self.gpus_per_task) > 0

    def gpus_total(self, nodes: int | None = None) -> int:
        """Total GPUs the job needs across ``nodes`` nodes (default: its minimum)."""
        n = nodes or self.nodes_min
        return max(self.gpus_per_node * n, self.gpus_per_job, self.gpus_per_task * self.ntasks)


@dataclass(frozen=True, slots=True)
class Job:
    """One job (or one array task) as Slurm reports it."""

    job_id: int
    name: str
    user: str
    state: JobState
    partitions: tuple[str, ...]
    """Pending: the partitions it may start in; running: the one it runs in."""
    request: JobRequest = field(default_factory=JobRequest)
    account: str | None = None
    qos: str | None = None
    group: str | None = None
    reason: str | None = None
    array_job_id: int | None = None
    array_task_id: str | None = None
    """A task index (``"3"``) or, for a pending array record, the range (``"0-9%2"``)."""
    priority: int = 0
    nice: int = 0
    held: bool = False
    submit_time: int | None = None
    eligible_time: int | None = None
    start_time: int | None = None
    """Running: actual start. Pending: Slurm's own backfill estimate, or None."""
    end_time: int | None = None
    """Running: expected end at the time limit, finished: actual end."""
    nodes: tuple[str, ...] = ()
    """Allocated nodes (running jobs)."""
    gpu_indexes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Allocated GPU indexes per node (from ``gres_detail``)."""
    gpus_alloc: Mapping[str, int] = field(default_factory=dict)
    """Allocated GPUs per type across all nodes."""
    cpus_alloc: int = 0
    memory_alloc_mb: int = 0
    dependency: str | None = None
    comment: str | None = None
    admin_comment: str | None = None
    work_dir: str | None = None

    @property
    def pending(self) -> bool:
        return self.state == JobState.PENDING

    @property
    def running(self) -> bool:
        return self.state in (JobState.RUNNING, JobState.COMPLETING, JobState.CONFIGURING)

    @property
    def plugin_allowed(self) -> tuple[str, ...]:
        """The allowed set recorded by ``plugins/job_submit.lua`` in admin_comment (or ``()``)."""
        for word in (self.admin_comment or "").split():
            if word.startswith(PLUGIN_ALLOWED_TAG):
                return tuple(p for p in word[len(PLUGIN_ALLOWED_TAG) :].split(",") if p)
        return ()

    @property
    def key(self) -> str:
        """Slurm's display id: ``123`` or ``120_3`` for an array task."""
        if self.array_job_id is not None and self.array_task_id is not None:
            return f"{self.array_job_id}_{self.array_task_id}"
        return str(self.job_id)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole cluster state at one instant, as read in one consistent cycle."""

    taken_at: int
    nodes: tuple[Node, ...]
    partitions: tuple[Partition, ...]
    jobs: tuple[Job, ...]
    slurm_version: str = ""
    cluster_name: str = ""
    source: str = ""
    """How it was read: ``cli-22.05``, ``cli-24.11``, ``pyslurm``, ``file:...``."""

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def partition(self, name: str) -> Partition:
        for p in self.partitions:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def default_partition(self) -> Partition | None:
        return next((p for p in self.partitions if p.is_default), None)

    @property
    def pending(self) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.pending)

    @property
    def running(self) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.running)

    # -- JSON ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form (see docs/snapshot-format.md)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "taken_at": self.taken_at,
            "slurm_version": self.slurm_version,
            "cluster_name": self.cluster_name,
            "source": self.source,
            "nodes": [_to_jsonable(n) for n in self.nodes],
            "partitions": [_to_jsonable(p) for p in self.partitions],
            "jobs": [_to_jsonable(j) for j in self.jobs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """Read the JSON form back.

        Raises:
            ValueError: unknown format version or malformed content.
        """
        fmt = data.get("format")
        if fmt != SNAPSHOT_FORMAT:
            raise ValueError(
                f"snapshot format {fmt!r} is not supported (this slurmopt reads {SNAPSHOT_FORMAT})"
            )
        try:
            return cls(
                taken_at=int(data["taken_at"]),
                slurm_version=str(data.get("slurm_version", "")),
                cluster_name=str(data.get("cluster_name", "")),
                source=str(data.get("source", "")),
                nodes=tuple(_node_from(d) for d in data["nodes"]),
                partitions=tuple(_partition_from(d) for d in data["partitions"]),
                jobs=tuple(_job_from(d) for d in data["jobs"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed snapshot: {exc!r}") from exc


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, frozenset):
        return sorted(obj)
    if isinstance(obj, tuple | list):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, Mapping):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    return obj


def _tuple(v: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return None if v is None else tuple(v)


def _node_from(d: Mapping[str, Any]) -> Node:
    kw = dict(d)
    kw["state"] = parse_enum(NodeState, kw["state"], what="node")
    kw["flags"] = frozenset(kw.get("flags", ()))
    for k in ("features", "active_features", "partitions"):
        kw[k] = tuple(kw.get(k, ()))
    return Node(**kw)


def _partition_from(d: Mapping[str, Any]) -> Partition:
    kw = dict(d)
    kw["nodes"] = tuple(kw["nodes"])
    for k in ("allow_accounts", "allow_groups", "allow_qos"):
        kw[k] = _tuple(kw.get(k))
    for k in ("deny_accounts", "deny_qos"):
        kw[k] = tuple(kw.get(k, ()))
    return Partition(**kw)


def _job_from(d: Mapping[str, Any]) -> Job:
    kw = dict(d)
    kw["state"] = parse_enum(JobState, kw["state"], what="job")
    kw["partitions"] = tuple(kw["partitions"])
    kw["nodes"] = tuple(kw.get("nodes", ()))
    kw["request"] = JobRequest(**kw.get("request", {}))
    kw["gpu_indexes"] = {k: tuple(v) for k, v in kw.get("gpu_indexes", {}).items()}
    return Job(**kw)


# -- plans and changes ----------------------------------------------------------


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
