"""Cluster specs: the shape of a (real, emulated or simulated) Slurm cluster in TOML.

One schema serves the local testbed (``scripts/testbed`` writes ``slurm.conf``
from it), the tests (the running cluster must match its spec) and the simulator.
This module uses the standard library only: ``scripts/testbed`` imports it
before any virtualenv exists.

Schema (see ``etc/testbed/default.toml`` for a full example)::

    name = "default"                  # cluster name (letters, digits, '-', '_')
    description = "..."               # optional free text

    [[nodes]]                         # a group of identical nodes
    name = "gpu-h[1-2]"               # hostlist: gpu-h1, gpu-h2
    cpus = 64
    memory_mb = 512000
    gpus = 8                          # optional, default 0
    gpu_type = "h100"                 # optional, "" = untyped GPUs
    features = ["h100", "nvlink"]     # optional

    [[partitions]]
    name = "h100"
    nodes = ["gpu-h[1-2]"]            # hostlists; a node may be in several partitions
    default = false                   # optional; at most one partition is the default
    max_time = "2-00:00:00"           # optional Slurm time; "UNLIMITED" / omitted = none
    default_time = "04:00:00"         # optional Slurm time
    max_nodes = 2                     # optional; omitted = unlimited
    state = "UP"                      # optional: UP, DOWN, DRAIN, INACTIVE
    priority_tier = 1                 # optional, default 1
    allow_qos = ["high"]              # optional access rules, written to slurm.conf as
    deny_qos = [], allow_accounts = [], deny_accounts = [], allow_groups = []
    qos = "gpuqos"                    # optional partition QOS
    preempt_mode = "REQUEUE"          # optional (OFF, CANCEL, REQUEUE, SUSPEND)

    accounting = true                 # optional: slurmdbd + MariaDB (default true)
    [[accounts]]                      # optional, created with sacctmgr (parent "root")
    name = "research"
    parent = "root"                   # optional
    fairshare = 2                     # optional, default 1
    default = true                    # the account of users added by `testbed add-user`
    [[qos]]                           # optional, created with sacctmgr
    name = "high"
    priority = 100                    # optional, default 0
    max_wall = "04:00:00"             # optional Slurm time
    max_tres_per_user = "gres/gpu=4"  # optional TRES string
    grp_tres = "gres/gpu=8"           # optional TRES string

    [gpu_speed]                       # optional: relative throughput per GPU type
    h100 = 3.0

    [partition_speed]                 # optional: explicit per-partition speed
    gpu = 2.0

Every error is a :class:`ValueError` that names the offending key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slurmopt.errors import SlurmParseError
from slurmopt.slurm import fields, hostlist

__all__ = [
    "AccountSpec",
    "ClusterSpec",
    "NodeSpec",
    "PartitionSpec",
    "QosSpec",
    "expand_hostlist",
    "load_spec",
    "parse_spec",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PART_STATES = ("UP", "DOWN", "DRAIN", "INACTIVE")


@dataclass(frozen=True)
class NodeSpec:
    """One emulated or simulated node."""

    name: str
    cpus: int
    memory_mb: int
    gpus: int = 0
    gpu_type: str = ""
    features: list[str] = field(default_factory=list)
    group: str = ""
    """The hostlist expression of the ``[[nodes]]`` entry this node came from."""

    @property
    def gres(self) -> str:
        """The Slurm ``Gres=`` value (``gpu:h100:8``, ``gpu:4``) or ``""`` without GPUs."""
        if self.gpus <= 0:
            return ""
        return f"gpu:{self.gpu_type}:{self.gpus}" if self.gpu_type else f"gpu:{self.gpus}"


@dataclass(frozen=True)
class PartitionSpec:
    """One partition; ``nodes`` is the expanded, ordered, de-duplicated node list."""

    name: str
    nodes: list[str]
    default: bool = False
    max_time_s: int | None = None
    """``None`` = unlimited."""
    default_time_s: int | None = None
    max_nodes: int | None = None
    """``None`` = unlimited."""
    state: str = "UP"
    priority_tier: int = 1
    node_groups: list[str] = field(default_factory=list)
    """The hostlist expressions as written in the spec."""
    allow_qos: list[str] = field(default_factory=list)
    deny_qos: list[str] = field(default_factory=list)
    allow_accounts: list[str] = field(default_factory=list)
    deny_accounts: list[str] = field(default_factory=list)
    allow_groups: list[str] = field(default_factory=list)
    qos: str = ""
    """The partition QOS (``""``: none)."""
    preempt_mode: str = ""
    """``PreemptMode=`` of the partition (``""``: the cluster's)."""


@dataclass(frozen=True)
class AccountSpec:
    """An accounting account (created with ``sacctmgr`` by the testbed)."""

    name: str
    parent: str = "root"
    fairshare: int = 1
    default: bool = False


@dataclass(frozen=True)
class QosSpec:
    """A QOS (created with ``sacctmgr`` by the testbed)."""

    name: str
    priority: int = 0
    max_wall_s: int | None = None
    max_tres_per_user: str = ""
    grp_tres: str = ""


@dataclass(frozen=True)
class ClusterSpec:
    """A whole cluster: nodes, partitions and speed factors."""

    name: str
    nodes: list[NodeSpec]
    partitions: list[PartitionSpec]
    gpu_speed: dict[str, float] = field(default_factory=dict)
    partition_speed: dict[str, float] = field(default_factory=dict)
    """Explicit ``[partition_speed]`` entries, completed for every partition with GPUs
    whose GPU types all have a ``gpu_speed``: the slowest type of the partition
    (conservative, so a predicted runtime is never too short)."""
    description: str = ""
    source: str = ""
    """The file the spec was read from (``""`` when parsed from a mapping)."""
    job_type_speed: dict[str, dict[str, float]] = field(default_factory=dict)
    """Simulator: ``[job_type_speed."<job type>"]`` relative speed of a job type per GPU
    type, on the same scale as ``gpu_speed`` (a job type runs faster or slower than the
    typical job on some GPU types); missing entries fall back to ``gpu_speed``."""
    reference_gpu_type: str = ""
    """Simulator: the GPU type trace runtimes are taken to have been measured on
    (``""``: speed 1.0)."""
    accounting: bool = True
    """Testbed: run slurmdbd with MariaDB (``accounting = false``: no accounting)."""
    accounts: list[AccountSpec] = field(default_factory=list)
    qos: list[QosSpec] = field(default_factory=list)

    @property
    def default_account(self) -> str:
        """The account that ``scripts/testbed add-user`` gives a user."""
        chosen = next((a for a in self.accounts if a.default), None)
        if chosen is None and self.accounts:
            chosen = self.accounts[0]
        return chosen.name if chosen else "root"

    def node(self, name: str) -> NodeSpec:
        """The node called ``name``. Raises KeyError if there is none."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def partition(self, name: str) -> PartitionSpec:
        """The partition called ``name``. Raises KeyError if there is none."""
        for p in self.partitions:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def default_partition(self) -> PartitionSpec | None:
        """The default partition, if the spec names one."""
        return next((p for p in self.partitions if p.default), None)

    def gpu_types(self) -> list[str]:
        """Distinct GPU types of the nodes, in order of first appearance."""
        seen: dict[str, None] = {}
        for n in self.nodes:
            if n.gpus > 0:
                seen.setdefault(n.gpu_type, None)
        return list(seen)


# ---------------------------------------------------------------------------
# hostlists and times


def expand_hostlist(expr: str) -> list[str]:
    """Expand a Slurm hostlist such as ``gpu-h[1-2],cpu[01-03,7]`` into names.

    The one expander of the project (:func:`slurmopt.slurm.hostlist.expand`,
    standard library only): order kept, duplicates dropped, zero padding kept.

    Raises:
        ValueError: on unbalanced brackets or malformed ranges.
    """
    return hostlist.expand(expr)


# ---------------------------------------------------------------------------
# loading


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _get(table: Mapping[str, Any], key: str, typ: type, where: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ValueError(f"{where}: missing required key {key!r}")
        return default
    value = table[key]
    ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ValueError(f"{where}: key {key!r} must be {typ.__name__}, got {value!r}")
    return value


def _str_list(table: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: key {key!r} must be a list of strings")
    return list(value)


def _time(table: Mapping[str, Any], key: str, where: str) -> int | None:
    raw = _get(table, key, str, where, None)
    if raw is None:
        return None
    try:
        return fields.parse_duration(raw)
    except SlurmParseError as exc:
        raise ValueError(f"{where}: key {key!r}: {exc}") from None


def _parse_nodes(raw: Any) -> list[NodeSpec]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("key 'nodes' must be a non-empty array of tables ([[nodes]])")
    nodes: list[NodeSpec] = []
    seen: set[str] = set()
    allowed = {"name", "cpus", "memory_mb", "gpus", "gpu_type", "features"}
    for i, t in enumerate(raw):
        where = f"nodes[{i}]"
        if not isinstance(t, dict):
            raise ValueError(f"{where} must be a table")
        _check_keys(t, allowed, where)
        group = _get(t, "name", str, where)
        cpus = _get(t, "cpus", int, where)
        mem = _get(t, "memory_mb", int, where)
        gpus = _get(t, "gpus", int, where, 0)
        gpu_type = _get(t, "gpu_type", str, where, "")
        if cpus <= 0 or mem <= 0 or gpus < 0:
            raise ValueError(f"{where}: 'cpus' and 'memory_mb' must be > 0, 'gpus' >= 0")
        if gpu_type and not _NAME_RE.match(gpu_type):
            raise ValueError(f"{where}: bad 'gpu_type' {gpu_type!r}")
        features = _str_list(t, "features", where)
        for name in expand_hostlist(group):
            if not _NAME_RE.match(name):
                raise ValueError(f"{where}: bad node name {name!r} in 'name'")
            if name in seen:
                raise ValueError(f"{where}: node {name!r} in 'name' is defined twice")
            seen.add(name)
            nodes.append(NodeSpec(name, cpus, mem, gpus, gpu_type, list(features), group))
    return nodes


def _parse_partitions(raw: Any, node_names: set[str]) -> list[PartitionSpec]:  # noqa: PLR0912  one check per partition key, each with its own message
    if not isinstance(raw, list) or not raw:
        raise ValueError("key 'partitions' must be a non-empty array of tables ([[partitions]])")
    parts: list[PartitionSpec] = []
    allowed = {
        "name",
        "nodes",
        "default",
        "max_time",
        "default_time",
        "max_nodes",
        "state",
        "priority_tier",
        *_ACCESS_KEYS,
        "qos",
        "preempt_mode",
    }
    for i, t in enumerate(raw):
        where = f"partitions[{i}]"
        if not isinstance(t, dict):
            raise ValueError(f"{where} must be a table")
        _check_keys(t, allowed, where)
        name = _get(t, "name", str, where)
        if not _NAME_RE.match(name):
            raise ValueError(f"{where}: bad partition 'name' {name!r}")
        groups = _str_list(t, "nodes", where)
        if not groups:
            raise ValueError(f"{where}: key 'nodes' must list at least one node")
        members: dict[str, None] = {}
        for g in groups:
            for n in expand_hostlist(g):
                if n not in node_names:
                    raise ValueError(f"{where}: key 'nodes' names unknown node {n!r}")
                members.setdefault(n, None)
        max_time = _time(t, "max_time", where)
        default_time = _time(t, "default_time", where)
        if max_time is not None and default_time is not None and default_time > max_time:
            raise ValueError(f"{where}: 'default_time' exceeds 'max_time'")
        max_nodes = _get(t, "max_nodes", int, where, None)
        if max_nodes is not None and max_nodes <= 0:
            raise ValueError(f"{where}: 'max_nodes' must be > 0")
        state = _get(t, "state", str, where, "UP").upper()
        if state not in _PART_STATES:
            raise ValueError(f"{where}: 'state' must be one of {', '.join(_PART_STATES)}")
        parts.append(
            PartitionSpec(
                name=name,
                nodes=list(members),
                default=_get(t, "default", bool, where, False),
                max_time_s=max_time,
                default_time_s=default_time,
                max_nodes=max_nodes,
                state=state,
                priority_tier=_get(t, "priority_tier", int, where, 1),
                node_groups=groups,
                **{k: _names(t, k, where) for k in _ACCESS_KEYS},
                qos=_get(t, "qos", str, where, ""),
                preempt_mode=_preempt_mode(t, where),
            )
        )
    names = [p.name for p in parts]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"partitions: 'name' {', '.join(dups)} defined twice")
    if sum(p.default for p in parts) > 1:
        raise ValueError("partitions: more than one has 'default = true'")
    return parts


_ACCESS_KEYS = ("allow_qos", "deny_qos", "allow_accounts", "deny_accounts", "allow_groups")
_PREEMPT_MODES = ("OFF", "CANCEL", "REQUEUE", "SUSPEND", "GANG", "SUSPEND,GANG")


def _names(t: Mapping[str, Any], key: str, where: str) -> list[str]:
    names = _str_list(t, key, where)
    bad = [n for n in names if not _NAME_RE.match(n)]
    if bad:
        raise ValueError(f"{where}: key {key!r}: bad name(s) {', '.join(map(repr, bad))}")
    return names


def _preempt_mode(t: Mapping[str, Any], where: str) -> str:
    mode: str = _get(t, "preempt_mode", str, where, "").upper()
    if mode and mode not in _PREEMPT_MODES:
        raise ValueError(f"{where}: 'preempt_mode' must be one of {', '.join(_PREEMPT_MODES)}")
    return mode


def _parse_accounts(raw: Any) -> list[AccountSpec]:
    if not isinstance(raw, list):
        raise ValueError("key 'accounts' must be an array of tables ([[accounts]])")
    out: list[AccountSpec] = []
    for i, t in enumerate(raw):
        where = f"accounts[{i}]"
        if not isinstance(t, dict):
            raise ValueError(f"{where} must be a table")
        _check_keys(t, {"name", "parent", "fairshare", "default"}, where)
        name = _get(t, "name", str, where)
        parent = _get(t, "parent", str, where, "root")
        for key, value in (("name", name), ("parent", parent)):
            if not _NAME_RE.match(value):
                raise ValueError(f"{where}: bad {key!r} {value!r}")
        fairshare = _get(t, "fairshare", int, where, 1)
        if fairshare <= 0:
            raise ValueError(f"{where}: 'fairshare' must be > 0")
        out.append(AccountSpec(name, parent, fairshare, _get(t, "default", bool, where, False)))
    names = [a.name for a in out]
    if len(set(names)) != len(names) or "root" in names:
        raise ValueError("accounts: a 'name' is defined twice (or is 'root')")
    for a in out:
        if a.parent != "root" and a.parent not in names:
            raise ValueError(f"accounts: {a.name!r} has unknown parent {a.parent!r}")
    if sum(a.default for a in out) > 1:
        raise ValueError("accounts: more than one has 'default = true'")
    return out


_TRES_RE = re.compile(r"^[a-z]+(/[a-z0-9_:]+)?=\d+(,[a-z]+(/[a-z0-9_:]+)?=\d+)*$")


def _parse_qos(raw: Any) -> list[QosSpec]:
    if not isinstance(raw, list):
        raise ValueError("key 'qos' must be an array of tables ([[qos]])")
    out: list[QosSpec] = []
    for i, t in enumerate(raw):
        where = f"qos[{i}]"
        if not isinstance(t, dict):
            raise ValueError(f"{where} must be a table")
        _check_keys(t, {"name", "priority", "max_wall", "max_tres_per_user", "grp_tres"}, where)
        name = _get(t, "name", str, where)
        if not _NAME_RE.match(name):
            raise ValueError(f"{where}: bad 'name' {name!r}")
        tres = {k: _get(t, k, str, where, "") for k in ("max_tres_per_user", "grp_tres")}
        for key, value in tres.items():
            if value and not _TRES_RE.match(value):
                raise ValueError(f"{where}: {key!r} is not a TRES list like 'gres/gpu=4'")
        out.append(
            QosSpec(
                name,
                _get(t, "priority", int, where, 0),
                _time(t, "max_wall", where),
                tres["max_tres_per_user"],
                tres["grp_tres"],
            )
        )
    names = [q.name for q in out]
    if len(set(names)) != len(names) or "normal" in names:
        raise ValueError("qos: a 'name' is defined twice (or is 'normal', which always exists)")
    return out


def _speed_table(data: Mapping[str, Any], key: str) -> dict[str, float]:
    raw = data.get(key, {})
    if not isinstance(raw, dict):
        raise ValueError(f"key {key!r} must be a table")
    out: dict[str, float] = {}
    for k in raw:
        v = _get(raw, k, float, key)
        if v <= 0:
            raise ValueError(f"{key}: key {k!r} must be > 0")
        out[k] = v
    return out


def parse_spec(data: Mapping[str, Any], source: str = "") -> ClusterSpec:
    """Build a :class:`ClusterSpec` from an already parsed TOML mapping.

    Raises:
        ValueError: naming the key, on any invalid or unknown entry.
    """
    _check_keys(
        data,
        {
            "name",
            "description",
            "nodes",
            "partitions",
            "gpu_speed",
            "partition_speed",
            "job_type_speed",
            "reference_gpu_type",
            "accounting",
            "accounts",
            "qos",
        },
        "top level",
    )
    name = _get(data, "name", str, "top level")
    if not _NAME_RE.match(name):
        raise ValueError(f"top level: bad cluster 'name' {name!r}")
    nodes = _parse_nodes(data.get("nodes"))
    parts = _parse_partitions(data.get("partitions"), {n.name for n in nodes})
    gpu_speed = _speed_table(data, "gpu_speed")
    part_speed = _speed_table(data, "partition_speed")
    unknown = sorted(set(part_speed) - {p.name for p in parts})
    if unknown:
        raise ValueError(f"partition_speed: unknown partition(s) {', '.join(unknown)}")
    accounts = _parse_accounts(data.get("accounts", []))
    qos = _parse_qos(data.get("qos", []))
    known_qos = {"normal", *(q.name for q in qos)}
    known_accounts = {"root", *(a.name for a in accounts)}
    for p in parts:
        for key, known in (
            ("allow_qos", known_qos),
            ("deny_qos", known_qos),
            ("allow_accounts", known_accounts),
            ("deny_accounts", known_accounts),
        ):
            unknown_names = sorted(set(getattr(p, key)) - known)
            if unknown_names:
                raise ValueError(f"partition {p.name!r}: {key} names unknown {unknown_names}")
        if p.qos and p.qos not in known_qos:
            raise ValueError(f"partition {p.name!r}: unknown 'qos' {p.qos!r}")
    by_name = {n.name: n for n in nodes}
    for p in parts:
        if p.name in part_speed:
            continue
        types = {by_name[n].gpu_type for n in p.nodes if by_name[n].gpus > 0}
        if types and all(t in gpu_speed for t in types):
            part_speed[p.name] = min(gpu_speed[t] for t in types)
    return ClusterSpec(
        name=name,
        nodes=nodes,
        partitions=parts,
        gpu_speed=gpu_speed,
        partition_speed=part_speed,
        description=_get(data, "description", str, "top level", ""),
        source=source,
        job_type_speed=_job_type_speed(data),
        reference_gpu_type=_get(data, "reference_gpu_type", str, "top level", ""),
        accounting=_get(data, "accounting", bool, "top level", True),
        accounts=accounts,
        qos=qos,
    )


def _job_type_speed(data: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    raw = data.get("job_type_speed", {})
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError("key 'job_type_speed' must be a table of tables")
    return {jt: _speed_table(raw, jt) for jt in raw}


def load_spec(path: str | Path) -> ClusterSpec:
    """Read and validate a cluster spec TOML file.

    Raises:
        ValueError: if the file is not valid TOML or not a valid spec (the message
            names the file and the key).
        OSError: if the file cannot be read.
    """
    p = Path(path)
    with p.open("rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{p}: invalid TOML: {exc}") from None
    try:
        return parse_spec(data, source=str(p))
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None
