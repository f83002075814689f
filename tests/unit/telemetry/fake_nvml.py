"""A fake NVML layer (implements slurmopt.telemetry.nvml.NvmlLib) that injects faults."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slurmopt.telemetry.nvml import (
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    NvmlCallError,
)

GIB = 1024**3


@dataclass
class FakeMig:
    uuid: str
    used: int = 1 * GIB
    total: int = 10 * GIB


@dataclass
class FakeGpu:
    uuid: str = "GPU-0000"
    name: str = "NVIDIA A100-SXM4-80GB"
    minor: int = 0
    util: tuple[int, int] = (50, 20)
    mem: tuple[int, int] = (10 * GIB, 80 * GIB)
    temp: int = 45
    power_mw: int = 250_000
    limit_mw: int = 400_000
    throttle: int = 0
    ecc: dict[tuple[bool, bool], int] = field(default_factory=dict)
    """(uncorrected, aggregate) -> count."""
    rows: tuple[int, int, bool, bool] = (0, 0, False, False)
    pages: tuple[int, int] = (0, 0)
    pages_pending: bool = False
    pcie: tuple[int, int] = (4, 16)
    procs: list[tuple[int, int | None]] = field(default_factory=list)
    mig: list[FakeMig | None] | None = None
    """None: MIG not supported; a list (slots, None = empty): MIG enabled."""
    xids: list[int] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    """Method name -> NVML error code to raise instead of answering."""
    lost_after: str | None = None
    """From this method on (in read order), every call raises GPU_IS_LOST."""
    hang_on: str | None = None
    """This method blocks until the fake's ``release`` event is set."""


class FakeNvml:
    """Fake NVML. ``init_error`` / ``count_error`` fail the library as a whole."""

    def __init__(
        self,
        gpus: Sequence[FakeGpu] = (),
        *,
        driver: str = "550.54.15",
        init_error: int | None = None,
        count_error: int | None = None,
    ) -> None:
        self.gpus = list(gpus)
        self.driver = driver
        self.init_error = init_error
        self.count_error = count_error
        self.calls: list[str] = []
        self.release = threading.Event()
        self.shut_down = False
        self._lost: set[int] = set()

    # -- helpers ----------------------------------------------------------------
    def _gpu(self, h: Any, method: str) -> FakeGpu:
        self.calls.append(method)
        idx = h[1] if isinstance(h, tuple) and h[0] == "mig" else h
        g = self.gpus[idx]
        if g.lost_after == method:
            self._lost.add(idx)
        if idx in self._lost:
            raise NvmlCallError(NVML_ERROR_GPU_IS_LOST, "GPU is lost")
        if g.hang_on == method:
            self.release.wait(30)
        if method in g.faults:
            raise NvmlCallError(g.faults[method], f"fake fault in {method}")
        return g

    # -- NvmlLib ----------------------------------------------------------------
    def init(self) -> None:
        self.calls.append("init")
        if self.init_error is not None:
            raise NvmlCallError(self.init_error, "fake init failure")

    def shutdown(self) -> None:
        self.shut_down = True

    def driver_version(self) -> str:
        return self.driver

    def device_count(self) -> int:
        if self.count_error is not None:
            raise NvmlCallError(self.count_error, "fake count failure")
        return len(self.gpus)

    def handle(self, index: int) -> Any:
        self._gpu(index, "handle")
        return index

    def uuid(self, h: Any) -> str:
        g = self._gpu(h, "uuid")
        if isinstance(h, tuple):
            mig = g.mig[h[2]] if g.mig else None
            assert mig is not None
            return mig.uuid
        return g.uuid

    def name(self, h: Any) -> str:
        return self._gpu(h, "name").name

    def minor_number(self, h: Any) -> int:
        return self._gpu(h, "minor_number").minor

    def pci_bus_id(self, h: Any) -> str:
        return f"00000000:{0x10 + self._gpu(h, 'pci_bus_id').minor:02X}:00.0"

    def mig_mode(self, h: Any) -> tuple[int, int]:
        g = self._gpu(h, "mig_mode")
        if g.mig is None:
            raise NvmlCallError(NVML_ERROR_NOT_SUPPORTED, "Not Supported")
        return (1, 1)

    def max_mig_devices(self, h: Any) -> int:
        g = self._gpu(h, "max_mig_devices")
        return len(g.mig or [])

    def mig_handle(self, h: Any, index: int) -> Any:
        g = self._gpu(h, "mig_handle")
        if not g.mig or g.mig[index] is None:
            raise NvmlCallError(NVML_ERROR_NOT_FOUND, "Not Found")
        return ("mig", h, index)

    def utilization(self, h: Any) -> tuple[int, int]:
        return self._gpu(h, "utilization").util

    def memory(self, h: Any) -> tuple[int, int]:
        g = self._gpu(h, "memory")
        if isinstance(h, tuple):
            mig = g.mig[h[2]] if g.mig else None
            assert mig is not None
            return (mig.used, mig.total)
        return g.mem

    def temperature(self, h: Any) -> int:
        return self._gpu(h, "temperature").temp

    def power_usage_mw(self, h: Any) -> int:
        return self._gpu(h, "power_usage_mw").power_mw

    def power_limit_mw(self, h: Any) -> int:
        return self._gpu(h, "power_limit_mw").limit_mw

    def throttle_reasons(self, h: Any) -> int:
        return self._gpu(h, "throttle_reasons").throttle

    def ecc_errors(self, h: Any, *, uncorrected: bool, aggregate: bool) -> int:
        g = self._gpu(h, "ecc_errors")
        return g.ecc.get((uncorrected, aggregate), 0)

    def remapped_rows(self, h: Any) -> tuple[int, int, bool, bool]:
        return self._gpu(h, "remapped_rows").rows

    def retired_pages(self, h: Any, *, double_bit: bool) -> int:
        return self._gpu(h, "retired_pages").pages[1 if double_bit else 0]

    def retired_pages_pending(self, h: Any) -> bool:
        return self._gpu(h, "retired_pages_pending").pages_pending

    def pcie_gen(self, h: Any) -> int:
        return self._gpu(h, "pcie_gen").pcie[0]

    def pcie_width(self, h: Any) -> int:
        return self._gpu(h, "pcie_width").pcie[1]

    def compute_processes(self, h: Any) -> list[tuple[int, int | None]]:
        return list(self._gpu(h, "compute_processes").procs)

    def xid_events(self, handles: Sequence[Any], wait_ms: int) -> list[tuple[int, int]]:
        self.calls.append("xid_events")
        return [(h, x) for h in handles for x in self.gpus[h].xids]
