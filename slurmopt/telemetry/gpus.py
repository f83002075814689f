"""Read every GPU through :class:`~slurmopt.telemetry.nvml.NvmlLib`, under a watchdog.

Rules:

* a field the GPU or driver does not support (``NOT_SUPPORTED``,
  ``FUNCTION_NOT_FOUND``) is absent (``None``), never an error;
* any other NVML error is recorded on that GPU (:class:`FieldError`) and the
  probe goes on with the next field;
* ``GPU_IS_LOST`` / ``RESET_REQUIRED`` mark the GPU ``lost`` and stop reading it;
* no driver / no library / no GPU: no GPUs and a reason, not an exception;
* the whole read runs in a daemon worker thread with an overall deadline. A
  hung NVML call cannot be interrupted from Python, so on timeout the GPUs read
  so far are returned, the rest are reported as not read, and the stuck thread
  dies with the process (the CLI exits right after).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from slurmopt.telemetry.nvml import (
    ABSENT_CODES,
    LOST_CODES,
    NO_DRIVER_CODES,
    NVML_ERROR_NOT_FOUND,
    NvmlCallError,
    NvmlLib,
    decode_throttle_reasons,
)

log = logging.getLogger(__name__)

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FieldError:
    """An NVML error while reading one field of one GPU."""

    field: str
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class MigDevice:
    """One MIG instance of a GPU."""

    index: int
    uuid: str | None = None
    memory_used_mb: int | None = None
    memory_total_mb: int | None = None


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A compute process on a GPU, mapped to its owner with psutil."""

    pid: int
    used_memory_mb: int | None = None
    user: str | None = None
    job_id: int | None = None
    """Slurm job of the process (from its cgroup path or environment), if any."""
    cgroup: str | None = None


@dataclass(frozen=True, slots=True)
class GpuSample:
    """Everything one probe learned about one GPU; ``None`` = not supported / not read."""

    index: int
    uuid: str | None = None
    name: str | None = None
    minor: int | None = None
    pci_bus_id: str | None = None
    lost: bool = False
    """NVML said GPU_IS_LOST / RESET_REQUIRED (fallen off the bus)."""
    mig_enabled: bool | None = None
    mig_devices: tuple[MigDevice, ...] = ()
    util_sm_pct: int | None = None
    util_mem_pct: int | None = None
    memory_used_mb: int | None = None
    memory_total_mb: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    throttle_reasons: tuple[str, ...] | None = None
    ecc_volatile_corrected: int | None = None
    ecc_volatile_uncorrected: int | None = None
    ecc_aggregate_corrected: int | None = None
    ecc_aggregate_uncorrected: int | None = None
    retired_pages_sbe: int | None = None
    retired_pages_dbe: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_corrected: int | None = None
    remapped_rows_uncorrected: int | None = None
    remap_pending: bool | None = None
    remap_failed: bool | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    xids: tuple[int, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    job_id: int | None = None
    """Slurm job that holds this GPU (from the allocation's GPU indexes)."""
    job_user: str | None = None
    errors: tuple[FieldError, ...] = ()


@dataclass(frozen=True, slots=True)
class GpuReadout:
    """Result of reading all GPUs of a host."""

    gpus: tuple[GpuSample, ...] = ()
    driver_version: str | None = None
    nvml_ok: bool = False
    """NVML initialized and enumerated the devices."""
    reason: str | None = None
    """Why there are no (or not all) GPUs: no driver, NVML error, watchdog timeout."""
    device_count: int | None = None
    timed_out: bool = False


class _GpuReader:
    """Reads one GPU field by field, keeping errors instead of raising."""

    def __init__(self, lib: NvmlLib, index: int) -> None:
        self.lib = lib
        self.index = index
        self.lost = False
        self.errors: list[FieldError] = []

    def get(self, fld: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.lost:
            return None
        try:
            return fn(*args, **kwargs)
        except NvmlCallError as exc:
            if exc.code in ABSENT_CODES:
                return None
            self.errors.append(FieldError(fld, exc.code, exc.message))
            if exc.code in LOST_CODES:
                self.lost = True
                log.warning("GPU %d is lost (%s while reading %s)", self.index, exc, fld)
            else:
                log.warning("GPU %d: NVML error reading %s: %s", self.index, fld, exc)
            return None


def _mb(v: int | None) -> int | None:
    return None if v is None else int(v // _MIB)


def _pair(v: Any, i: int) -> Any:
    return None if v is None else v[i]


def read_gpu(lib: NvmlLib, index: int) -> GpuSample:
    """Read one GPU; never raises for NVML errors (they are kept on the sample)."""
    r = _GpuReader(lib, index)
    h = r.get("handle", lib.handle, index)
    if h is None:
        return GpuSample(index=index, lost=r.lost, errors=tuple(r.errors))
    kw: dict[str, Any] = {"index": index}
    kw["uuid"] = r.get("uuid", lib.uuid, h)
    kw["name"] = r.get("name", lib.name, h)
    kw["minor"] = r.get("minor", lib.minor_number, h)
    kw["pci_bus_id"] = r.get("pci_bus_id", lib.pci_bus_id, h)
    mig = r.get("mig_mode", lib.mig_mode, h)
    kw["mig_enabled"] = None if mig is None else mig[0] == 1
    if kw["mig_enabled"]:
        kw["mig_devices"] = _read_mig(lib, r, h)
    util = r.get("utilization", lib.utilization, h)
    kw["util_sm_pct"], kw["util_mem_pct"] = _pair(util, 0), _pair(util, 1)
    mem = r.get("memory", lib.memory, h)
    kw["memory_used_mb"], kw["memory_total_mb"] = _mb(_pair(mem, 0)), _mb(_pair(mem, 1))
    kw["temperature_c"] = r.get("temperature", lib.temperature, h)
    pw = r.get("power", lib.power_usage_mw, h)
    kw["power_w"] = None if pw is None else pw / 1000.0
    pl = r.get("power_limit", lib.power_limit_mw, h)
    kw["power_limit_w"] = None if pl is None else pl / 1000.0
    tr = r.get("throttle_reasons", lib.throttle_reasons, h)
    kw["throttle_reasons"] = None if tr is None else decode_throttle_reasons(tr)
    for agg in (False, True):
        for unc in (False, True):
            key = f"ecc_{'aggregate' if agg else 'volatile'}_{'un' if unc else ''}corrected"
            kw[key] = r.get(key, lib.ecc_errors, h, uncorrected=unc, aggregate=agg)
    kw["retired_pages_sbe"] = r.get("retired_pages_sbe", lib.retired_pages, h, double_bit=False)
    kw["retired_pages_dbe"] = r.get("retired_pages_dbe", lib.retired_pages, h, double_bit=True)
    kw["retired_pages_pending"] = r.get("retired_pages_pending", lib.retired_pages_pending, h)
    rows = r.get("remapped_rows", lib.remapped_rows, h)
    if rows is not None:
        (
            kw["remapped_rows_corrected"],
            kw["remapped_rows_uncorrected"],
            kw["remap_pending"],
            kw["remap_failed"],
        ) = rows
    kw["pcie_gen"] = r.get("pcie_gen", lib.pcie_gen, h)
    kw["pcie_width"] = r.get("pcie_width", lib.pcie_width, h)
    procs = r.get("processes", lib.compute_processes, h) or []
    kw["processes"] = tuple(GpuProcess(pid=pid, used_memory_mb=_mb(used)) for pid, used in procs)
    kw["lost"] = r.lost
    kw["errors"] = tuple(r.errors)
    return GpuSample(**kw)


def _read_mig(lib: NvmlLib, r: _GpuReader, h: Any) -> tuple[MigDevice, ...]:
    count = r.get("mig_max_devices", lib.max_mig_devices, h) or 0
    out: list[MigDevice] = []
    for i in range(count):
        try:
            mh = lib.mig_handle(h, i)
        except NvmlCallError as exc:
            if exc.code not in (NVML_ERROR_NOT_FOUND, *ABSENT_CODES):
                r.errors.append(FieldError(f"mig_device[{i}]", exc.code, exc.message))
                if exc.code in LOST_CODES:
                    r.lost = True
                    break
            continue
        mem = r.get(f"mig_device[{i}].memory", lib.memory, mh)
        out.append(
            MigDevice(
                index=i,
                uuid=r.get(f"mig_device[{i}].uuid", lib.uuid, mh),
                memory_used_mb=_mb(_pair(mem, 0)),
                memory_total_mb=_mb(_pair(mem, 1)),
            )
        )
    return tuple(out)


class _Progress:
    """What the worker thread has done so far (read by the watchdog on timeout)."""

    def __init__(self) -> None:
        self.gpus: list[GpuSample] = []
        self.driver_version: str | None = None
        self.device_count: int | None = None
        self.nvml_ok = False
        self.reason: str | None = None
        self.step = "nvmlInit"


def _read_all(lib: NvmlLib, p: _Progress, xid_wait_ms: int) -> None:
    try:
        lib.init()
    except NvmlCallError as exc:
        if exc.code in NO_DRIVER_CODES:
            p.reason = f"no NVIDIA driver: {exc}"
        else:
            p.reason = f"NVML init failed: {exc}"
        return
    try:
        p.step = "driver version"
        try:
            p.driver_version = lib.driver_version()
        except NvmlCallError as exc:
            log.warning("NVML driver version: %s", exc)
        p.step = "device count"
        try:
            p.device_count = lib.device_count()
        except NvmlCallError as exc:
            p.reason = f"NVML device count failed: {exc}"
            return
        p.nvml_ok = True
        if p.device_count == 0:
            p.reason = "no GPU found by NVML"
            return
        for i in range(p.device_count):
            p.step = f"reading GPU {i}"
            p.gpus.append(read_gpu(lib, i))
        if xid_wait_ms > 0:
            p.step = "waiting for XID events"
            _add_xids(lib, p, xid_wait_ms)
    finally:
        try:
            lib.shutdown()
        except NvmlCallError as exc:
            log.debug("nvmlShutdown: %s", exc)


def _add_xids(lib: NvmlLib, p: _Progress, wait_ms: int) -> None:
    live = [g.index for g in p.gpus if not g.lost]
    try:
        handles = [lib.handle(i) for i in live]
        events = lib.xid_events(handles, wait_ms)
    except NvmlCallError as exc:
        if exc.code not in ABSENT_CODES:
            log.warning("NVML XID events: %s", exc)
        return
    by_index: dict[int, list[int]] = {}
    for idx, xid in events:
        by_index.setdefault(idx, []).append(xid)
    p.gpus = [
        _replace_xids(g, tuple(by_index[g.index])) if g.index in by_index else g for g in p.gpus
    ]


def _replace_xids(g: GpuSample, xids: tuple[int, ...]) -> GpuSample:
    return replace(g, xids=g.xids + xids)


def read_gpus(
    lib_factory: Callable[[], NvmlLib], *, deadline_s: float = 10.0, xid_wait_ms: int = 0
) -> GpuReadout:
    """Read every GPU with an overall deadline (see the module doc).

    Args:
        lib_factory: builds the NVML layer (``PynvmlLib`` in production). Called
            inside the worker thread; an :class:`NvmlCallError` from it means no NVML.
        deadline_s: overall time limit of the NVML part.
        xid_wait_ms: how long to listen for XID events after reading (0: not at all).
    """
    p = _Progress()

    def work() -> None:
        try:
            lib = lib_factory()
        except NvmlCallError as exc:
            p.reason = f"no NVML library: {exc}"
            return
        _read_all(lib, p, xid_wait_ms)

    t0 = time.monotonic()
    worker = threading.Thread(target=work, name="slurmopt-nvml", daemon=True)
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        log.error("NVML watchdog: no answer within %.1f s (%s)", deadline_s, p.step)
        done = list(p.gpus)
        return GpuReadout(
            gpus=tuple(done),
            driver_version=p.driver_version,
            nvml_ok=False,
            reason=f"NVML watchdog: timed out after {deadline_s:g} s while {p.step}",
            device_count=p.device_count,
            timed_out=True,
        )
    log.debug("NVML read in %.3f s", time.monotonic() - t0)
    return GpuReadout(
        gpus=tuple(p.gpus),
        driver_version=p.driver_version,
        nvml_ok=p.nvml_ok,
        reason=p.reason,
        device_count=p.device_count,
    )


__all__ = [
    "FieldError",
    "GpuProcess",
    "GpuReadout",
    "GpuSample",
    "MigDevice",
    "read_gpu",
    "read_gpus",
]
