"""Partitions into :class:`slurmopt.model.Partition`.

Two sources, one result:

* ``scontrol -o show partitions`` (one ``Key=Value`` line per partition): the
  only partition source on the 22.05 command line, and the only one that shows
  ``Default=YES`` on 24.11 (its data_parser v0.0.42 JSON has no flags);
* ``scontrol show partitions --json`` (23.02+): limits as number objects,
  ``flags: ["DEFAULT"]`` from data_parser v0.0.43 on.

Node lists are hostlist expressions; ``ALL`` or node sets are resolved against
the nodes' own partition membership by the caller (:func:`resolve_nodes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from slurmopt.errors import SlurmParseError
from slurmopt.model import Node, Partition
from slurmopt.slurm import fields, hostlist
from slurmopt.slurm.parse_nodes import load_json


def parse_oneliner(line: str) -> dict[str, str]:
    """``A=1 B=x y C=2`` -> dict. Values may hold ``=`` (``TRES=cpu=16,mem=1G``);
    a word without ``=`` continues the previous value (free text with spaces)."""
    out: dict[str, str] = {}
    last: str | None = None
    for word in line.split():
        key, sep, val = word.partition("=")
        if sep and key and (key[0].isupper() or last is None):
            out[key] = val
            last = key
        elif last is not None:
            out[last] = f"{out[last]} {word}"
    return out


def _allow(text: str | None) -> tuple[str, ...] | None:
    """``ALL`` / empty -> None (everyone); else the names."""
    s = fields.nonempty(text)
    if s is None or s.upper() == "ALL":
        return None
    return tuple(x for x in s.split(",") if x)


def _deny(text: str | None) -> tuple[str, ...]:
    s = fields.nonempty(text)
    return tuple(x for x in s.split(",") if x) if s else ()


def _limit_int(text: str | None) -> int | None:
    s = fields.nonempty(text)
    if s is None or s.upper() in ("UNLIMITED", "INFINITE"):
        return None
    try:
        return int(s)
    except ValueError as exc:
        raise SlurmParseError(f"bad partition limit {text!r}") from exc


def _named(value: Any) -> str | None:
    """A single name, or None for ``N/A`` / empty."""
    text = str(value or "").strip()
    return None if text.upper() in ("", "N/A", "(NULL)", "NONE") else text


def _preempt(value: Any) -> str | None:
    """A partition's own PreemptMode; None when off or the cluster's (22.05 prints OFF,
    26.05 CLUSTER_GLOBAL, 24.11's JSON nothing, for the same unset partition)."""
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    name = _named(value)
    return None if name is None or name.upper() in ("OFF", "CLUSTER_GLOBAL") else name.upper()


def parse_partition_line(line: str) -> Partition:
    """One ``scontrol -o show partitions`` line -> Partition (nodes not yet resolved).

    Raises:
        SlurmParseError: no PartitionName, or a malformed limit.
    """
    kv = parse_oneliner(line)
    name = kv.get("PartitionName")
    if not name:
        raise SlurmParseError(f"not a partition line: {line[:80]!r}")
    return Partition(
        name=name,
        nodes=tuple(hostlist.expand(fields.nonempty(kv.get("Nodes")))),
        state=(kv.get("State") or "UP").upper(),
        is_default=kv.get("Default", "NO").upper() == "YES",
        hidden=kv.get("Hidden", "NO").upper() == "YES",
        max_time_s=fields.parse_duration(kv.get("MaxTime")),
        default_time_s=fields.parse_duration(kv.get("DefaultTime")),
        max_nodes=_limit_int(kv.get("MaxNodes")),
        min_nodes=_limit_int(kv.get("MinNodes")) or 0,
        priority_tier=_limit_int(kv.get("PriorityTier")) or 1,
        priority_job_factor=_limit_int(kv.get("PriorityJobFactor")) or 1,
        allow_accounts=_allow(kv.get("AllowAccounts")),
        deny_accounts=_deny(kv.get("DenyAccounts")),
        allow_groups=_allow(kv.get("AllowGroups")),
        allow_qos=_allow(kv.get("AllowQos")),
        deny_qos=_deny(kv.get("DenyQos")),
        qos=_named(kv.get("QoS")),
        preempt_mode=_preempt(kv.get("PreemptMode")),
        def_mem_per_cpu_mb=fields.parse_mem_mb(kv.get("DefMemPerCPU")),
        def_mem_per_node_mb=fields.parse_mem_mb(kv.get("DefMemPerNode")),
        max_mem_per_node_mb=fields.parse_mem_mb(kv.get("MaxMemPerNode")),
        max_cpus_per_node=_limit_int(kv.get("MaxCPUsPerNode")),
        oversubscribe=(kv.get("OverSubscribe") or "NO").upper(),
        total_cpus=_limit_int(kv.get("TotalCPUs")) or 0,
        total_nodes=_limit_int(kv.get("TotalNodes")) or 0,
    )


def parse_partitions_text(text: str) -> tuple[Partition, ...]:
    """The whole ``scontrol -o show partitions`` output -> partitions.

    Raises:
        SlurmParseError: a line that is not a partition.
    """
    return tuple(parse_partition_line(ln) for ln in text.splitlines() if ln.strip())


def default_partitions_text(text: str) -> set[str]:
    """Names of the partitions marked ``Default=YES`` in oneliner output."""
    return {p.name for p in parse_partitions_text(text) if p.is_default}


def _oversubscribe(part: Mapping[str, Any]) -> str:
    text = fields.nonempty((part.get("partition") or {}).get("oversubscribe"))
    if text:
        return text.upper()
    over = (part.get("maximums") or {}).get("oversubscribe") or {}
    jobs = fields.int_or(over.get("jobs"), 1)
    flags = [str(f).upper() for f in over.get("flags") or []]
    if "FORCE" in flags or "FORCED" in flags:
        return f"FORCE:{jobs}"
    if jobs == 0:
        return "EXCLUSIVE"
    return "NO" if jobs == 1 else f"YES:{jobs}"


def _mem_limit(value: Any) -> int | None:
    return fields.opt_int(value, zero_is_none=True)


def parse_partition_json(part: Mapping[str, Any]) -> Partition:
    """One partition object of ``scontrol show partitions --json`` -> Partition.

    Raises:
        SlurmParseError: a required field is missing or malformed.
    """
    try:
        nodes = part.get("nodes") or {}
        maxi = part.get("maximums") or {}
        defs = part.get("defaults") or {}
        acc = part.get("accounts") or {}
        qos = part.get("qos") or {}
        state = (part.get("partition") or {}).get("state") or ["UP"]
        state_word = state[0] if isinstance(state, list) and state else str(state)
        flags = {str(f).upper() for f in part.get("flags") or []}
        return Partition(
            name=str(part["name"]),
            nodes=tuple(hostlist.expand(fields.nonempty(nodes.get("configured")))),
            state=str(state_word).upper(),
            is_default="DEFAULT" in flags,
            hidden="HIDDEN" in flags,
            max_time_s=fields.minutes_to_s(maxi.get("time")),
            default_time_s=fields.minutes_to_s(defs.get("time")),
            max_nodes=fields.opt_int(maxi.get("nodes")),
            min_nodes=fields.int_or((part.get("minimums") or {}).get("nodes"), 0),
            priority_tier=fields.int_or((part.get("priority") or {}).get("tier"), 1),
            priority_job_factor=fields.int_or((part.get("priority") or {}).get("job_factor"), 1),
            allow_accounts=_allow(acc.get("allowed")),
            deny_accounts=_deny(acc.get("deny")),
            allow_groups=_allow((part.get("groups") or {}).get("allowed")),
            allow_qos=_allow(qos.get("allowed")),
            deny_qos=_deny(qos.get("deny")),
            qos=_named(qos.get("assigned")),
            # 26.05: ["REQUEUE"] / ["CLUSTER_GLOBAL"]; 24.11's JSON does not show it
            preempt_mode=_preempt(part.get("preempt_mode")),
            def_mem_per_cpu_mb=_mem_limit(defs.get("partition_memory_per_cpu")),
            def_mem_per_node_mb=_mem_limit(defs.get("partition_memory_per_node")),
            max_mem_per_node_mb=_mem_limit(maxi.get("partition_memory_per_node")),
            max_cpus_per_node=fields.opt_int(maxi.get("cpus_per_node")),
            oversubscribe=_oversubscribe(part),
            total_cpus=fields.int_or((part.get("cpus") or {}).get("total"), 0),
            total_nodes=fields.int_or(nodes.get("total"), 0),
        )
    except SlurmParseError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SlurmParseError(f"malformed partition {part.get('name', '?')!r}: {exc!r}") from exc


def parse_partitions_json(text: str) -> tuple[tuple[Partition, ...], bool]:
    """``scontrol show partitions --json`` -> (partitions, whether it shows default flags).

    Raises:
        SlurmParseError: not JSON, Slurm reported errors, or no ``partitions`` list.
    """
    data = load_json(text, what="partitions")
    parts = data.get("partitions")
    if not isinstance(parts, list):
        raise SlurmParseError("partition JSON has no 'partitions' list")
    has_flags = bool(parts) and all("flags" in p for p in parts)
    return tuple(parse_partition_json(p) for p in parts), has_flags


def resolve_nodes(partitions: Sequence[Partition], nodes: Iterable[Node]) -> tuple[Partition, ...]:
    """Give each partition its real node names.

    A hostlist that names only known nodes is kept in its order. ``ALL``, node
    sets or names that are not nodes fall back to the nodes that list the
    partition in their own ``partitions``, so a partition never names a node
    the snapshot does not have.
    """
    from dataclasses import replace

    node_list = list(nodes)
    known = {n.name for n in node_list}
    out = []
    for p in partitions:
        if p.nodes and all(n in known for n in p.nodes):
            out.append(p)
            continue
        members = tuple(n.name for n in node_list if p.name in n.partitions)
        out.append(replace(p, nodes=members))
    return tuple(out)


def apply_oneliner(partitions: Sequence[Partition], text: str) -> tuple[Partition, ...]:
    """What data_parser v0.0.42 (24.11) leaves out, from the oneliner: ``Default=YES``,
    ``Hidden=YES`` and each partition's PreemptMode (where the JSON gave none)."""
    from dataclasses import replace

    lines = {p.name: p for p in parse_partitions_text(text)}
    out = []
    for p in partitions:
        line = lines.get(p.name)
        mode = p.preempt_mode if p.preempt_mode is not None or line is None else line.preempt_mode
        out.append(
            replace(
                p,
                is_default=line is not None and line.is_default,
                hidden=p.hidden or (line is not None and line.hidden),
                preempt_mode=mode,
            )
        )
    return tuple(out)


def apply_defaults(partitions: Sequence[Partition], defaults: set[str]) -> tuple[Partition, ...]:
    """Set ``is_default`` from another source (the oneliner), exactly for ``defaults``."""
    from dataclasses import replace

    return tuple(replace(p, is_default=p.name in defaults) for p in partitions)
