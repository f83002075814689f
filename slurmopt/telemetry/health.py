"""Health rules over a probe, and the drain / resume decision (pure; no I/O here).

The rules (each can be turned off in :class:`HealthConfig`):

``gpu_count``
    NVML sees fewer GPUs than expected (config, else the node's configured GRES
    in Slurm, else gres.conf).
``nvml``
    NVML failed where GPUs are expected: init / enumeration failure, the
    watchdog fired, or a GPU answered a field with an error other than
    "not supported" / "no permission".
``gpu_lost``
    a GPU answered GPU_IS_LOST or RESET_REQUIRED (fallen off the bus).
``ecc``
    the uncorrected ECC count (aggregate, else volatile) grew since the last
    run. Latched: the finding stays until the GPU's volatile uncorrected count is
    back at 0 (driver reload / GPU reset) or an admin clears the state.
``row_remap``
    row remapping failed or is pending (or, before Ampere, retired pages are
    pending): the GPU needs a reset.
``temperature``
    over :attr:`HealthConfig.max_temperature_c`.
``xid``
    an XID of the critical set was reported, by NVML events or in the kernel
    log (records newer than the last run's, per boot). Latched like ``ecc``.

The decision: an unhealthy node is drained with a reason that starts with
:data:`REASON_PREFIX` and carries the evidence; a node is resumed only when its
drain reason starts with that prefix and it is healthy again; a node drained
by anyone else is never touched.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from slurmopt.model import Node
from slurmopt.telemetry.gpus import GpuSample
from slurmopt.telemetry.nvml import NVML_ERROR_NO_PERMISSION
from slurmopt.telemetry.probe import ProbeResult

log = logging.getLogger(__name__)

REASON_PREFIX = "slurmopt:"
MAX_REASON_LEN = 240

DEFAULT_CRITICAL_XIDS: frozenset[int] = frozenset({48, 62, 64, 74, 79, 95, 119, 120, 140})
"""XIDs that take a node out: DBE (48), internal micro-controller halt (62), row
remap failure (64), NVLink error (74), fallen off the bus (79), uncontained ECC
(95), GSP errors (119, 120), unrecovered ECC (140)."""


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """Health rules (the config system's ``[health]`` table maps here)."""

    expected_gpus: int | None = None
    """None: from the node's configured GRES in Slurm, else gres.conf."""
    check_gpu_count: bool = True
    check_nvml: bool = True
    check_lost: bool = True
    check_ecc: bool = True
    check_row_remap: bool = True
    max_temperature_c: int | None = 90
    """None: no temperature rule."""
    critical_xids: frozenset[int] = DEFAULT_CRITICAL_XIDS
    timeout_s: float = 60.0
    """Overall bound of one ``slurmopt health`` run."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One failed rule, with its evidence."""

    rule: str
    message: str
    gpu_index: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    node: str
    findings: tuple[Finding, ...]
    expected_gpus: int | None = None

    @property
    def healthy(self) -> bool:
        return not self.findings

    def reason(self) -> str:
        """The drain reason: ``slurmopt: <evidence>; <evidence>`` (bounded length)."""
        text = f"{REASON_PREFIX} " + "; ".join(f.message for f in self.findings)
        text = " ".join(text.split())  # one line, no tabs
        if len(text) > MAX_REASON_LEN:
            text = text[: MAX_REASON_LEN - 3] + "..."
        return text


HealthState = MutableMapping[str, Any]
"""Per-GPU memory between runs, keyed by UUID (JSON-serializable)."""


def evaluate(  # noqa: PLR0912  one branch per health rule
    probe: ProbeResult,
    config: HealthConfig,
    state: HealthState,
    *,
    expected_gpus: int | None = None,
) -> Verdict:
    """Apply the rules to ``probe``; updates ``state`` (ECC baselines and latches).

    Args:
        probe: this node's probe.
        config: the rules.
        state: what earlier runs remembered (mutated; the caller saves it).
        expected_gpus: GPUs Slurm / gres.conf promise (``config.expected_gpus`` wins).
    """
    expected = config.expected_gpus if config.expected_gpus is not None else expected_gpus
    f: list[Finding] = []
    seen = len(probe.gpus)
    kernel = _new_kernel_xids(probe, config, state)
    gpus_expected = bool(expected) or bool(probe.gpus)
    if config.check_nvml and gpus_expected and (not probe.nvml_ok or probe.nvml_timed_out):
        f.append(Finding("nvml", f"NVML failure: {probe.gpu_reason or 'unknown'}"))
    if config.check_gpu_count and expected and seen < expected:
        f.append(Finding("gpu_count", f"expected {expected} GPUs, NVML sees {seen}"))
    for g in probe.gpus:
        tag = f"GPU{g.index}"
        if g.lost and config.check_lost:
            f.append(Finding("gpu_lost", f"{tag} lost (fallen off the bus)", g.index))
            continue
        errs = [e for e in g.errors if e.code != NVML_ERROR_NO_PERMISSION]
        if config.check_nvml and errs and not g.lost:
            fields = ",".join(sorted({e.field for e in errs}))
            f.append(Finding("nvml", f"{tag} NVML error on {fields} ({errs[0].message})", g.index))
        if config.check_row_remap:
            if g.remap_failed:
                f.append(Finding("row_remap", f"{tag} row remap failed", g.index))
            elif g.remap_pending or g.retired_pages_pending:
                f.append(Finding("row_remap", f"{tag} row remap/page retirement pending", g.index))
        if (
            config.max_temperature_c is not None
            and g.temperature_c is not None
            and (g.temperature_c > config.max_temperature_c)
        ):
            f.append(
                Finding(
                    "temperature",
                    f"{tag} {g.temperature_c}C > {config.max_temperature_c}C",
                    g.index,
                )
            )
        if g.uuid is None:
            continue
        st = state.setdefault(g.uuid, {})
        st["index"] = g.index
        if config.check_ecc:
            _ecc(g.index, g, st, f)
        crit = sorted({x for x in g.xids if x in config.critical_xids} | kernel.get(g.index, set()))
        if crit:
            st["xid_latched"] = f"{tag} critical XID {','.join(map(str, crit))}"
        if st.get("xid_latched"):
            f.append(Finding("xid", str(st["xid_latched"]), g.index))
    if kernel.get(None):
        node_st = state.setdefault("_node", {})
        xids = ",".join(map(str, sorted(kernel[None])))
        node_st["xid_latched"] = f"critical XID {xids} in the kernel log (GPU not identified)"
    node_latch = state.get("_node", {}).get("xid_latched")
    if node_latch:
        f.append(Finding("xid", str(node_latch)))
    return Verdict(probe.node, tuple(f), expected)


def _new_kernel_xids(
    probe: ProbeResult, config: HealthConfig, state: HealthState
) -> dict[int | None, set[int]]:
    """Critical XIDs of the kernel log not judged by an earlier run, by GPU index."""
    k = state.setdefault("_kernel", {})
    if probe.boot_id and k.get("boot_id") != probe.boot_id:
        k["boot_id"] = probe.boot_id
        k["seq"] = -1  # rebooted (or first run): the ring buffer starts afresh
    if not probe.kernel_xids:
        return {}
    last = int(k.get("seq", -1))
    k["seq"] = max(last, *(x.seq for x in probe.kernel_xids))
    out: dict[int | None, set[int]] = {}
    for x in probe.kernel_xids:
        if x.seq > last and x.xid in config.critical_xids:
            out.setdefault(x.gpu_index, set()).add(x.xid)
    return out


def _ecc(index: int, g: GpuSample, st: dict[str, Any], out: list[Finding]) -> None:
    vol = g.ecc_volatile_uncorrected
    agg = g.ecc_aggregate_uncorrected
    if vol == 0 and st.get("ecc_latched"):
        log.info("GPU%d: volatile uncorrected ECC back at 0: ECC latch cleared", index)
        st.pop("ecc_latched")
    grew: list[str] = []
    for key, value in (("ecc_unc_aggregate", agg), ("ecc_unc_volatile", vol)):
        if value is None:
            continue
        last = st.get(key)
        if last is not None and value > last:
            grew.append(f"{key.rsplit('_', 1)[-1]} {last}->{value}")
        st[key] = value
    if grew:
        st["ecc_latched"] = f"GPU{index} new uncorrected ECC errors ({', '.join(grew)})"
    if st.get("ecc_latched"):
        out.append(Finding("ecc", str(st["ecc_latched"]), index))


class Action(enum.StrEnum):
    NONE = "none"
    DRAIN = "drain"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    """The drain reason (for DRAIN) or why nothing / resume was chosen."""


def drained_by_slurmopt(node: Node) -> bool:
    return node.drained and (node.reason or "").startswith(REASON_PREFIX)


def decide(node: Node | None, verdict: Verdict) -> Decision:  # noqa: PLR0911  one return per row of the drain/resume table (docs/telemetry.md)
    """What to do with ``node`` given ``verdict`` (``node`` None: Slurm state unknown)."""
    if node is None:
        return Decision(Action.NONE, "node state unknown: nothing changed")
    if not verdict.healthy:
        if node.drained and not drained_by_slurmopt(node):
            return Decision(Action.NONE, f"drained by someone else ({node.reason!r}): left alone")
        reason = verdict.reason()
        if drained_by_slurmopt(node) and node.reason == reason:
            return Decision(Action.NONE, "already drained by slurmopt for the same reason")
        return Decision(Action.DRAIN, reason)
    if drained_by_slurmopt(node):
        return Decision(Action.RESUME, "healthy again")
    if node.drained:
        return Decision(Action.NONE, f"healthy, but drained by someone else ({node.reason!r})")
    return Decision(Action.NONE, "healthy")


def clear_latches(state: HealthState, uuids: Mapping[str, Any] | None = None) -> int:
    """Clear ECC and XID latches (all GPUs, or those in ``uuids``); returns how many."""
    n = 0
    for uuid, st in state.items():
        if uuids is not None and uuid not in uuids:
            continue
        for key in ("ecc_latched", "xid_latched"):
            if isinstance(st, dict) and st.pop(key, None) is not None:
                n += 1
    return n
