"""Nodes from Slurm JSON into :class:`slurmopt.model.Node`.

One parser serves both layouts, because the per-node keys are the same:

* 22.05: ``sinfo --json`` (openapi v0.0.38), state ``"mixed"`` plus
  ``state_flags: ["DRAIN"]``, features as a comma string, plain ints;
* 23.02+: ``scontrol show nodes --json`` (data_parser v0.0.39 ... v0.0.45),
  state ``["MIXED", "DRAIN"]``, features as lists, numbers as
  ``{"set", "infinite", "number"}`` objects.

GPUs are counted from the node's ``gres`` (configured, ``gpu:a100:4``) and
``gres_used`` (``gpu:a100:2(IDX:0-1)``), never from ``tres``: GPUs appear in
TRES strings only when accounting tracks ``gres/gpu``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from slurmopt.errors import SlurmParseError, SlurmUnavailable
from slurmopt.model import Node, NodeState, parse_enum
from slurmopt.slurm import fields
from slurmopt.slurm.runner import is_unavailable_message

_BASE_STATES = frozenset(s.value for s in NodeState)


def node_state(state: Any, flags: Sequence[str] = ()) -> tuple[NodeState, frozenset[str]]:
    """Split Slurm's node state into a base state and flags.

    ``"idle"`` + ``["DRAIN"]`` (22.05) and ``["IDLE", "DRAIN"]`` (23.02+) both give
    ``(IDLE, {"DRAIN"})``. An unknown base state becomes UNKNOWN with a warning.
    """
    words = [str(s).upper() for s in state] if isinstance(state, list) else [str(state).upper()]
    words = [w for w in words if w]
    # 22.05 may print compound text such as "idle+drain" in some outputs.
    expanded: list[str] = []
    for w in words:
        expanded.extend(p for p in w.replace("+", " ").split() if p)
    base_word = next((w for w in expanded if w in _BASE_STATES), None)
    if base_word is None:
        base = parse_enum(NodeState, expanded[0] if expanded else "", what="node")
        rest = expanded[1:]
    else:
        base = NodeState(base_word)
        rest = [w for w in expanded if w != base_word]
    all_flags = frozenset(rest) | frozenset(str(f).upper() for f in flags if f)
    return base, all_flags


def _gpus_used(gres_used: Any, total: Mapping[str, int]) -> dict[str, int]:
    used = fields.gpus_by_type(gres_used)
    # 22.05 prints "gpu:0" on nodes with no GPU at all; keep only known types or real use.
    return {t: n for t, n in used.items() if n > 0 or t in total}


def parse_node(raw: Mapping[str, Any]) -> Node:
    """One node dict (either layout) -> Node.

    Raises:
        SlurmParseError: a required field is missing or malformed.
    """
    try:
        name = str(raw["name"])
        state, flags = node_state(raw.get("state", "UNKNOWN"), raw.get("state_flags") or ())
        gpus = fields.gpus_by_type(raw.get("gres"))
        return Node(
            name=name,
            state=state,
            flags=flags,
            cpus=fields.int_or(raw.get("cpus"), 0),
            cpus_alloc=fields.int_or(raw.get("alloc_cpus"), 0),
            memory_mb=fields.int_or(raw.get("real_memory"), 0),
            memory_alloc_mb=fields.int_or(raw.get("alloc_memory"), 0),
            gpus=gpus,
            gpus_used=_gpus_used(raw.get("gres_used"), gpus),
            features=fields.str_list(raw.get("features")),
            active_features=fields.str_list(raw.get("active_features")),
            partitions=fields.str_list(raw.get("partitions")),
            reason=fields.nonempty(raw.get("reason")),
            weight=fields.int_or(raw.get("weight"), 1),
            extra=fields.nonempty(raw.get("extra")) or fields.nonempty(raw.get("comment")),
        )
    except SlurmParseError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SlurmParseError(f"malformed node record {raw.get('name', '?')!r}: {exc!r}") from exc


def parse_nodes_json(text: str) -> tuple[Node, ...]:
    """The whole ``sinfo --json`` (22.05) or ``scontrol show nodes --json`` output -> nodes.

    Raises:
        SlurmParseError: not JSON, Slurm reported errors, or no ``nodes`` list.
    """
    data = load_json(text, what="nodes")
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        raise SlurmParseError("node JSON has no 'nodes' list (aggregated sinfo output?)")
    if nodes and "name" not in nodes[0]:
        raise SlurmParseError("node JSON is not per node (sinfo --json on 23.02+ aggregates)")
    return tuple(parse_node(n) for n in nodes)


def load_json(text: str, *, what: str) -> dict[str, Any]:
    """Parse a Slurm JSON answer and reject one that carries errors.

    Raises:
        SlurmParseError: not a JSON object, or a non-empty ``errors`` list.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SlurmParseError(f"{what}: Slurm did not answer JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SlurmParseError(f"{what}: expected a JSON object")
    errors = data.get("errors") or []
    if errors:
        msgs = "; ".join(
            str(e.get("description") or e.get("error") or e) if isinstance(e, dict) else str(e)
            for e in errors
        )
        if is_unavailable_message(msgs) or all(_generic_load_failure(e) for e in errors):
            raise SlurmUnavailable(
                f"{what}: Slurm could not load its state (slurmctld unreachable?): {msgs}"
            )
        raise SlurmParseError(f"{what}: Slurm reported errors: {msgs}")
    return data


def _generic_load_failure(err: Any) -> bool:
    """22.05's ``sinfo --json`` / ``squeue --json`` with slurmctld unreachable exit 0 and
    print only ``{"error": "Unspecified error", "errno": -1}`` (measured on the 22.05.8
    testbed with a wrong SlurmctldPort: 9 s, rc 0, empty stderr)."""
    if not isinstance(err, dict):
        return False
    code = err.get("errno", err.get("error_number"))
    return code == -1 and str(err.get("error", "")).lower() == "unspecified error"
