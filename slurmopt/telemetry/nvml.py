"""The NVML boundary: a small interface over pynvml that tests can replace.

Everything slurmopt asks NVML goes through :class:`NvmlLib`. The real
implementation, :class:`PynvmlLib`, wraps the ``pynvml`` module of
``nvidia-ml-py`` and turns its ``NVMLError`` into :class:`NvmlCallError`
(carrying NVML's numeric return code), so the code above it never imports
pynvml and a fake (``tests/unit/telemetry/fake_nvml.py``) can inject every fault
NVML can report: lost GPUs, unsupported fields, errors in the middle of a probe.

The pynvml functions used (checked against nvidia-ml-py 13.615):
``nvmlInit``, ``nvmlShutdown``, ``nvmlSystemGetDriverVersion``,
``nvmlDeviceGetCount``, ``nvmlDeviceGetHandleByIndex``, ``nvmlDeviceGetUUID``,
``nvmlDeviceGetName``, ``nvmlDeviceGetMinorNumber``, ``nvmlDeviceGetPciInfo``,
``nvmlDeviceGetMigMode``, ``nvmlDeviceGetMaxMigDeviceCount``,
``nvmlDeviceGetMigDeviceHandleByIndex``, ``nvmlDeviceGetUtilizationRates``,
``nvmlDeviceGetMemoryInfo``, ``nvmlDeviceGetTemperature``,
``nvmlDeviceGetPowerUsage``, ``nvmlDeviceGetEnforcedPowerLimit``,
``nvmlDeviceGetCurrentClocksEventReasons`` (falling back to
``nvmlDeviceGetCurrentClocksThrottleReasons`` on older bindings),
``nvmlDeviceGetTotalEccErrors``, ``nvmlDeviceGetRemappedRows``,
``nvmlDeviceGetRetiredPages``, ``nvmlDeviceGetRetiredPagesPendingStatus``,
``nvmlDeviceGetCurrPcieLinkGeneration``, ``nvmlDeviceGetCurrPcieLinkWidth``,
``nvmlDeviceGetComputeRunningProcesses``, ``nvmlEventSetCreate``,
``nvmlDeviceRegisterEvents`` (``nvmlEventTypeXidCriticalError``),
``nvmlEventSetWait``, ``nvmlEventSetFree``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

# NVML return codes (nvml.h); copied so that nothing above this module imports pynvml.
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_UNKNOWN = 999

ABSENT_CODES = frozenset({NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND})
"""Codes that mean "this GPU or driver does not have this field": reported as absent."""

NO_DRIVER_CODES = frozenset(
    {NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_FUNCTION_NOT_FOUND}
)
"""Codes of ``init`` that mean "no NVIDIA driver here" rather than a fault."""

LOST_CODES = frozenset({NVML_ERROR_GPU_IS_LOST, NVML_ERROR_RESET_REQUIRED})
"""Codes that mean the GPU has fallen off the bus or needs a reset."""

# Clock event (throttle) reason bits, nvml.h nvmlClocksEventReason*.
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)


def decode_throttle_reasons(mask: int) -> tuple[str, ...]:
    """Names of the set bits of an NVML clock event reason mask (unknown bits as hex)."""
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    known = sum(bit for bit, _ in THROTTLE_REASONS)
    if mask & ~known:
        names.append(f"other_0x{mask & ~known:x}")
    return tuple(names)


class NvmlCallError(Exception):
    """An NVML call failed; ``code`` is NVML's return code (``NVML_ERROR_*``)."""

    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        self.message = message or f"NVML error {code}"
        super().__init__(f"{self.message} (NVML code {code})")


class NvmlLib(Protocol):
    """What slurmopt asks NVML. ``handle`` objects are opaque to callers.

    Every method raises :class:`NvmlCallError` on failure. Memory is in bytes,
    power in milliwatts, as NVML reports them.
    """

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def driver_version(self) -> str: ...
    def device_count(self) -> int: ...
    def handle(self, index: int) -> Any: ...
    def uuid(self, h: Any) -> str: ...
    def name(self, h: Any) -> str: ...
    def minor_number(self, h: Any) -> int: ...
    def pci_bus_id(self, h: Any) -> str: ...
    def mig_mode(self, h: Any) -> tuple[int, int]:
        """(current, pending); 1 is enabled."""
        ...

    def max_mig_devices(self, h: Any) -> int: ...
    def mig_handle(self, h: Any, index: int) -> Any:
        """A MIG device's handle; raises NOT_FOUND for an empty slot."""
        ...

    def utilization(self, h: Any) -> tuple[int, int]:
        """(SM %, memory controller %)."""
        ...

    def memory(self, h: Any) -> tuple[int, int]:
        """(used, total) in bytes."""
        ...

    def temperature(self, h: Any) -> int: ...
    def power_usage_mw(self, h: Any) -> int: ...
    def power_limit_mw(self, h: Any) -> int: ...
    def throttle_reasons(self, h: Any) -> int: ...
    def ecc_errors(self, h: Any, *, uncorrected: bool, aggregate: bool) -> int: ...
    def remapped_rows(self, h: Any) -> tuple[int, int, bool, bool]:
        """(corrected rows, uncorrected rows, remap pending, remap failed)."""
        ...

    def retired_pages(self, h: Any, *, double_bit: bool) -> int:
        """Number of pages retired for single-bit (False) or double-bit (True) errors."""
        ...

    def retired_pages_pending(self, h: Any) -> bool: ...
    def pcie_gen(self, h: Any) -> int: ...
    def pcie_width(self, h: Any) -> int: ...
    def compute_processes(self, h: Any) -> list[tuple[int, int | None]]:
        """(pid, used bytes or None) of every compute process on the device."""
        ...

    def xid_events(self, handles: Sequence[Any], wait_ms: int) -> list[tuple[int, int]]:
        """(device index, XID) of critical XID events seen within ``wait_ms``."""
        ...


class PynvmlLib:
    """:class:`NvmlLib` over the real ``pynvml`` module (nvidia-ml-py).

    Raises:
        NvmlCallError: with ``NVML_ERROR_LIBRARY_NOT_FOUND`` when pynvml itself is
            not importable.
    """

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency
            raise NvmlCallError(NVML_ERROR_LIBRARY_NOT_FOUND, f"pynvml: {exc}") from exc
        self._n: Any = pynvml

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except self._n.NVMLError as exc:
            raise NvmlCallError(int(getattr(exc, "value", NVML_ERROR_UNKNOWN)), str(exc)) from exc

    @staticmethod
    def _str(v: Any) -> str:
        return v.decode(errors="replace") if isinstance(v, bytes) else str(v)

    def init(self) -> None:
        self._call(self._n.nvmlInit)

    def shutdown(self) -> None:
        self._call(self._n.nvmlShutdown)

    def driver_version(self) -> str:
        return self._str(self._call(self._n.nvmlSystemGetDriverVersion))

    def device_count(self) -> int:
        return int(self._call(self._n.nvmlDeviceGetCount))

    def handle(self, index: int) -> Any:
        return self._call(self._n.nvmlDeviceGetHandleByIndex, index)

    def uuid(self, h: Any) -> str:
        return self._str(self._call(self._n.nvmlDeviceGetUUID, h))

    def name(self, h: Any) -> str:
        return self._str(self._call(self._n.nvmlDeviceGetName, h))

    def minor_number(self, h: Any) -> int:
        return int(self._call(self._n.nvmlDeviceGetMinorNumber, h))

    def pci_bus_id(self, h: Any) -> str:
        return self._str(self._call(self._n.nvmlDeviceGetPciInfo, h).busId)

    def mig_mode(self, h: Any) -> tuple[int, int]:
        cur, pending = self._call(self._n.nvmlDeviceGetMigMode, h)
        return int(cur), int(pending)

    def max_mig_devices(self, h: Any) -> int:
        return int(self._call(self._n.nvmlDeviceGetMaxMigDeviceCount, h))

    def mig_handle(self, h: Any, index: int) -> Any:
        return self._call(self._n.nvmlDeviceGetMigDeviceHandleByIndex, h, index)

    def utilization(self, h: Any) -> tuple[int, int]:
        u = self._call(self._n.nvmlDeviceGetUtilizationRates, h)
        return int(u.gpu), int(u.memory)

    def memory(self, h: Any) -> tuple[int, int]:
        m = self._call(self._n.nvmlDeviceGetMemoryInfo, h)
        return int(m.used), int(m.total)

    def temperature(self, h: Any) -> int:
        return int(self._call(self._n.nvmlDeviceGetTemperature, h, self._n.NVML_TEMPERATURE_GPU))

    def power_usage_mw(self, h: Any) -> int:
        return int(self._call(self._n.nvmlDeviceGetPowerUsage, h))

    def power_limit_mw(self, h: Any) -> int:
        return int(self._call(self._n.nvmlDeviceGetEnforcedPowerLimit, h))

    def throttle_reasons(self, h: Any) -> int:
        fn = getattr(self._n, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if fn is None:  # bindings older than 12.535
            fn = self._n.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(self._call(fn, h))

    def ecc_errors(self, h: Any, *, uncorrected: bool, aggregate: bool) -> int:
        n = self._n
        etype = (
            n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
            if uncorrected
            else (n.NVML_MEMORY_ERROR_TYPE_CORRECTED)
        )
        counter = n.NVML_AGGREGATE_ECC if aggregate else n.NVML_VOLATILE_ECC
        return int(self._call(n.nvmlDeviceGetTotalEccErrors, h, etype, counter))

    def remapped_rows(self, h: Any) -> tuple[int, int, bool, bool]:
        corr, unc, pending, failed = self._call(self._n.nvmlDeviceGetRemappedRows, h)
        return int(corr), int(unc), bool(pending), bool(failed)

    def retired_pages(self, h: Any, *, double_bit: bool) -> int:
        cause = (
            self._n.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
            if double_bit
            else self._n.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
        )
        return len(self._call(self._n.nvmlDeviceGetRetiredPages, h, cause))

    def retired_pages_pending(self, h: Any) -> bool:
        return bool(self._call(self._n.nvmlDeviceGetRetiredPagesPendingStatus, h))

    def pcie_gen(self, h: Any) -> int:
        return int(self._call(self._n.nvmlDeviceGetCurrPcieLinkGeneration, h))

    def pcie_width(self, h: Any) -> int:
        return int(self._call(self._n.nvmlDeviceGetCurrPcieLinkWidth, h))

    def compute_processes(self, h: Any) -> list[tuple[int, int | None]]:
        procs = self._call(self._n.nvmlDeviceGetComputeRunningProcesses, h)
        out: list[tuple[int, int | None]] = []
        for p in procs:
            used = getattr(p, "usedGpuMemory", None)
            out.append((int(p.pid), None if used is None else int(used)))
        return out

    def xid_events(self, handles: Sequence[Any], wait_ms: int) -> list[tuple[int, int]]:
        n = self._n
        evset = self._call(n.nvmlEventSetCreate)
        try:
            for h in handles:
                try:
                    self._call(
                        n.nvmlDeviceRegisterEvents, h, n.nvmlEventTypeXidCriticalError, evset
                    )
                except NvmlCallError as exc:
                    if exc.code not in ABSENT_CODES:
                        raise
            out: list[tuple[int, int]] = []
            deadline = time.monotonic() + wait_ms / 1000.0
            while True:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    break
                try:
                    ev = self._call(n.nvmlEventSetWait, evset, left_ms)
                except NvmlCallError as exc:
                    if exc.code == NVML_ERROR_TIMEOUT:
                        break
                    raise
                if int(ev.eventType) & n.nvmlEventTypeXidCriticalError:
                    idx = int(self._call(n.nvmlDeviceGetIndex, ev.device))
                    out.append((idx, int(ev.eventData)))
            return out
        finally:
            try:
                self._call(n.nvmlEventSetFree, evset)
            except NvmlCallError:
                log.debug("nvmlEventSetFree failed", exc_info=True)
