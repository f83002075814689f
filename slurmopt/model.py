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
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from slurmopt.lazylog import get_logger

log = get_logger(__name__)

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
    hidden: bool = False
    """``Hidden=YES``: never offered to a job that does not name it (read with ``--all``)."""
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
    qos: str | None = None
    """The partition QOS (``QoS=``; None: none)."""
    preempt_mode: str | None = None
    """The partition's own ``PreemptMode`` (``REQUEUE``, ``CANCEL``, ``SUSPEND``...): a
    job there may be preempted. None: OFF or the cluster's (24.11's JSON never shows it)."""
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
    reservation: str | None = None
    """The reservation the job asked for (``--reservation``), if any."""
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
class QosLimits:
    """The limits of one QOS that decide where a job may start (from ``sacctmgr``)."""

    name: str
    max_wall_s: int | None = None
    """MaxWall: the longest time limit a job may have (None: none)."""
    max_gpus_per_user: int | None = None
    """MaxTRESPerUser gres/gpu: GPUs one user's running jobs may hold (None: none)."""
    grp_gpus: int | None = None
    """GrpTRES gres/gpu: GPUs all running jobs under this QOS may hold (None: none)."""
    max_gpus_per_job: int | None = None
    """MaxTRES (MaxTRESPerJob) gres/gpu: GPUs one job may ask for (None: none)."""
    over_part_qos: bool = False
    """Flag OverPartQOS: as a job's QOS, its limits win over the partition QOS's."""


@dataclass(frozen=True, slots=True)
class Association:
    """One user's association (``sacctmgr show user withassoc``): the account the user
    may submit under, its default QOS and the QOS it allows."""

    user: str
    account: str
    default_account: str | None = None
    """The user's DefaultAccount (the same on each of the user's associations)."""
    default_qos: str | None = None
    qos: tuple[str, ...] = ()
    partition: str | None = None
    """Set for a partition-specific association (not used for the defaults)."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """An advance reservation: its nodes are kept for the jobs that ask for it."""

    name: str
    nodes: tuple[str, ...]
    start: int | None = None
    end: int | None = None
    users: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def active(self, at: float) -> bool:
        """True if it holds its nodes at ``at`` (epoch seconds)."""
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)


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
    reservations: tuple[Reservation, ...] = ()
    qos: tuple[QosLimits, ...] = ()
    """Limits of the QOSes (read where accounting enforces limits; empty otherwise)."""
    associations: tuple[Association, ...] = ()
    """Users' associations (read where a partition restricts accounts or QOS, or where
    accounting enforces limits): the account and QOS a job without ``-A`` / ``-q``
    gets."""

    def reserved_nodes(self, job: Job, at: float | None = None) -> dict[str, str]:
        """Node -> reservation name, for the nodes that active reservations keep from
        ``job`` (every reservation but the one it asked for)."""
        t = self.taken_at if at is None else at
        out: dict[str, str] = {}
        for r in self.reservations:
            if r.name != job.reservation and r.active(t):
                for n in r.nodes:
                    out.setdefault(n, r.name)
        return out

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
            "reservations": [_to_jsonable(r) for r in self.reservations],
            "qos": [_to_jsonable(q) for q in self.qos],
            "associations": [_to_jsonable(a) for a in self.associations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """Read the JSON form back, checking the type of every field.

        Raises:
            ValueError: unknown format version or malformed content; the message
                names the field (``nodes[3].gpus.h100: expected an integer, got 'eight'``).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got {_kind(data)}")
        fmt = data.get("format")
        if fmt != SNAPSHOT_FORMAT:
            raise ValueError(
                f"snapshot format {fmt!r} is not supported (this slurmopt reads {SNAPSHOT_FORMAT})"
            )
        for key in ("taken_at", "nodes", "partitions", "jobs"):
            if key not in data:
                raise ValueError(f"{key}: missing")
        return cls(
            taken_at=_decode(data["taken_at"], int, "taken_at"),
            slurm_version=_decode(data.get("slurm_version", ""), str, "slurm_version"),
            cluster_name=_decode(data.get("cluster_name", ""), str, "cluster_name"),
            source=_decode(data.get("source", ""), str, "source"),
            nodes=_decode_list(data["nodes"], Node, "nodes"),
            partitions=_decode_list(data["partitions"], Partition, "partitions"),
            jobs=_decode_list(data["jobs"], Job, "jobs"),
            reservations=_decode_list(data.get("reservations", []), Reservation, "reservations"),
            qos=_decode_list(data.get("qos", []), QosLimits, "qos"),
            associations=_decode_list(data.get("associations", []), Association, "associations"),
        )


# -- typed reading of the JSON form (snapshots, the state cache) -----------------
#
# One decoder per type hint, built once per dataclass; a bad value raises _Bad,
# and each enclosing object or list adds its key on the way out, so the path
# (``nodes[3].gpus.h100``) is only formatted when something is wrong.

MAX_INT = 2**63 - 1
"""Integers in a snapshot are Slurm's (64-bit at most)."""

_Decoder = Callable[[Any], Any]


class _Bad(Exception):
    def __init__(self, reason: str, *path: str | int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = list(path)

    def where(self, prefix: str = "") -> str:
        out = prefix
        for p in self.path:
            out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
        return f"{out}: {self.reason}" if out else self.reason


def _kind(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else type(value).__name__


def _decode_list(value: Any, cls: type[Any], path: str) -> tuple[Any, ...]:
    try:
        return typing.cast(tuple[Any, ...], _decoder(tuple[cls, ...])(value))  # type: ignore[valid-type]
    except _Bad as bad:
        raise ValueError(bad.where(path)) from None


def _decode(value: Any, hint: Any, path: str) -> Any:
    try:
        return _decoder(hint)(value)
    except _Bad as bad:
        raise ValueError(bad.where(path)) from None


_DECODERS: dict[Any, _Decoder] = {}


def _decoder(hint: Any) -> _Decoder:
    """The (cached) decoder of a type hint: checks a JSON value, converts lists to tuples."""
    known = _DECODERS.get(hint)
    if known is None:
        known = _DECODERS[hint] = _build_decoder(hint)
    return known


def _d_str(v: Any) -> str:
    if type(v) is str:
        return v
    raise _Bad(f"expected a string, got {_kind(v)}")


def _d_int(v: Any) -> int:
    if type(v) is int:
        if -MAX_INT <= v <= MAX_INT:
            return v
        raise _Bad(f"{v} is out of range")
    if type(v) is float and v.is_integer() and abs(v) <= MAX_INT:
        return int(v)
    raise _Bad(f"expected an integer, got {_kind(v)}")


def _d_bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise _Bad(f"expected true or false, got {_kind(v)}")


def _d_float(v: Any) -> float:
    if type(v) in (int, float) and math.isfinite(v):
        return float(v)
    raise _Bad(f"expected a finite number, got {_kind(v)}")


def _build_decoder(hint: Any) -> _Decoder:
    simple = {str: _d_str, int: _d_int, bool: _d_bool, float: _d_float}
    if hint in simple:
        return simple[hint]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        kind = typing.cast(type[NodeState], hint)
        by_value = {m.value: m for m in kind}

        def d_enum(v: Any) -> Any:
            if type(v) is not str:
                raise _Bad(f"expected a state name, got {_kind(v)}")
            found = by_value.get(v)
            return found if found is not None else parse_enum(kind, v, what=kind.__name__)

        return d_enum
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _object_decoder(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        d_inner = _decoder(inner)

        def d_optional(v: Any) -> Any:
            return None if v is None else d_inner(v)

        return d_optional
    if origin in (tuple, frozenset):
        d_item = _decoder(args[0])
        make = frozenset if origin is frozenset else tuple

        def d_seq(v: Any) -> Any:
            if type(v) is not list and type(v) is not tuple:
                raise _Bad(f"expected a list, got {_kind(v)}")
            out = []
            for i, x in enumerate(v):
                try:
                    out.append(d_item(x))
                except _Bad as bad:
                    bad.path.insert(0, i)
                    raise
            return make(out)

        return d_seq
    if origin in (Mapping, dict):
        d_key, d_val = _decoder(args[0]), _decoder(args[1])

        def d_map(v: Any) -> Any:
            if not isinstance(v, Mapping):
                raise _Bad(f"expected an object, got {_kind(v)}")
            out = {}
            for k, x in v.items():
                try:
                    out[d_key(k)] = d_val(x)
                except _Bad as bad:
                    bad.path.insert(0, str(k))
                    raise
            return out

        return d_map
    raise TypeError(f"no decoder for {hint!r}")  # pragma: no cover - a model change


_HINTS: dict[str, Any] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """``typing.get_type_hints(cls)`` for this module's dataclasses, each distinct
    annotation string evaluated once (get_type_hints compiles every field's: about
    90 compiles, milliseconds on optsub's submit path)."""
    out: dict[str, Any] = {}
    glb = globals()
    for klass in reversed(cls.__mro__):
        for name, ann in vars(klass).get("__annotations__", {}).items():
            hint = ann
            if isinstance(ann, str):
                hint = _HINTS.get(ann)
                if hint is None:
                    hint = _HINTS[ann] = eval(ann, glb)  # our own annotations only
            out[name] = hint
    return out


def _object_decoder(cls: type[Any]) -> _Decoder:
    hints = _hints(cls)
    fields = dataclasses.fields(cls)
    required = tuple(
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    decoders: dict[str, _Decoder] = {}

    def d_object(v: Any) -> Any:
        if not isinstance(v, Mapping):
            raise _Bad(f"expected an object, got {_kind(v)}")
        for name in required:
            if name not in v:
                raise _Bad("missing", name)
        kw = {}
        for key, raw in v.items():
            d = decoders.get(key)
            if d is None:
                raise _Bad("unknown field", str(key))
            try:
                kw[key] = d(raw)
            except _Bad as bad:
                bad.path.insert(0, key)
                raise
        try:
            return cls(**kw)
        except (TypeError, ValueError) as exc:
            raise _Bad(str(exc)) from None

    _DECODERS[cls] = d_object  # before the fields: a dataclass may refer to itself
    for f in fields:
        decoders[f.name] = _decoder(hints[f.name])
    return d_object


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


# -- plans and changes: slurmopt.plans (imported on first use) ------------------
# optsub's submit path needs none of them; defining five more dataclasses costs
# about 2 ms per process. ``from slurmopt.model import Plan`` still works.

if TYPE_CHECKING:
    from slurmopt.plans import Change as Change  # noqa: PLC0414 - re-exported
    from slurmopt.plans import Move as Move  # noqa: PLC0414 - re-exported
    from slurmopt.plans import Placement as Placement  # noqa: PLC0414 - re-exported
    from slurmopt.plans import Plan as Plan  # noqa: PLC0414 - re-exported
    from slurmopt.plans import SetNice as SetNice  # noqa: PLC0414 - re-exported
    from slurmopt.plans import SetPriority as SetPriority  # noqa: PLC0414 - re-exported

_PLANS = frozenset({"Change", "Move", "Placement", "Plan", "SetNice", "SetPriority"})


def __getattr__(name: str) -> Any:
    if name in _PLANS:
        from slurmopt import plans

        return getattr(plans, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
