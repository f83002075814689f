"""One node probe: GPUs (NVML), host (psutil), and which job holds each GPU.

The JSON form (:meth:`ProbeResult.to_dict`, format :data:`PROBE_FORMAT`) is
what ``slurmopt probe --json`` prints, what ``slurmopt health --probe-file``
reads, and what ``--push`` stores; it is documented in ``docs/telemetry.md``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slurmopt.model import Job
from slurmopt.telemetry.alloc import Holder, gres_gpus_for, holders_from_jobs, parse_gres_conf
from slurmopt.telemetry.gpus import (
    FieldError,
    GpuProcess,
    GpuReadout,
    GpuSample,
    MigDevice,
    read_gpus,
)
from slurmopt.telemetry.host import (
    DEFAULT_DISK_PATHS,
    DiskUsage,
    HostSample,
    ProcessOwner,
    probe_host,
    process_owner,
)
from slurmopt.telemetry.kmsg import (
    DEFAULT_KMSG,
    KernelXid,
    parse_records,
    pci_key,
    read_boot_id,
    read_records,
)
from slurmopt.telemetry.nvml import NvmlLib, PynvmlLib

log = logging.getLogger(__name__)

PROBE_FORMAT = 1
"""Version of the probe JSON schema."""


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """Settings of a probe (the full config system maps its ``[telemetry]`` table here)."""

    nvml_deadline_s: float = 10.0
    """Watchdog: overall time limit of all NVML calls."""
    xid_wait_ms: int = 200
    """How long a one-shot probe listens for XID events (0: not at all)."""
    disk_paths: tuple[str, ...] = DEFAULT_DISK_PATHS
    gres_conf: str = "/etc/slurm/gres.conf"
    """gres.conf used to map Slurm GPU indexes to NVML devices ("" to skip)."""
    with_host: bool = True
    kmsg_path: str = DEFAULT_KMSG
    """Kernel log read for XIDs ("" to skip); see :mod:`slurmopt.telemetry.kmsg`."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Everything one probe saw on one node."""

    node: str
    taken_at: float
    duration_s: float = 0.0
    gpus: tuple[GpuSample, ...] = ()
    driver_version: str | None = None
    nvml_ok: bool = False
    gpu_reason: str | None = None
    """Why there are no GPUs, or not all of them (no driver, NVML error, watchdog)."""
    nvml_timed_out: bool = False
    host: HostSample | None = None
    allocation_source: str = "none"
    """Where the GPU holders come from: ``slurm`` (allocation), ``processes``, ``none``."""
    kernel_xids: tuple[KernelXid, ...] = ()
    """XIDs in the kernel ring buffer (all of them: health keeps track of the new ones)."""
    kernel_log_error: str | None = None
    boot_id: str | None = None
    format: int = PROBE_FORMAT

    def gpu(self, index: int) -> GpuSample | None:
        return next((g for g in self.gpus if g.index == index), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (tuples as lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeResult:
        """Read the JSON form back.

        Raises:
            ValueError: unknown format or malformed content.
        """
        if not isinstance(data, Mapping):
            raise ValueError("probe result must be a JSON object")
        fmt = data.get("format", PROBE_FORMAT)
        if fmt != PROBE_FORMAT:
            raise ValueError(f"probe format {fmt!r} not supported (reads {PROBE_FORMAT})")
        try:
            kw = dict(data)
            kw["gpus"] = tuple(_gpu_from(g) for g in kw.get("gpus", ()))
            kw["kernel_xids"] = tuple(KernelXid(**x) for x in kw.get("kernel_xids", ()))
            host = kw.get("host")
            if host is not None:
                h = dict(host)
                h["disks"] = tuple(DiskUsage(**d) for d in h.get("disks", ()))
                kw["host"] = HostSample(**h)
            return cls(**kw)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed probe result: {exc!r}") from exc


def _gpu_from(d: Mapping[str, Any]) -> GpuSample:
    kw = dict(d)
    kw["mig_devices"] = tuple(MigDevice(**m) for m in kw.get("mig_devices", ()))
    kw["processes"] = tuple(GpuProcess(**p) for p in kw.get("processes", ()))
    kw["errors"] = tuple(FieldError(**e) for e in kw.get("errors", ()))
    kw["xids"] = tuple(kw.get("xids", ()))
    if kw.get("throttle_reasons") is not None:
        kw["throttle_reasons"] = tuple(kw["throttle_reasons"])
    return GpuSample(**kw)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def default_node_name() -> str:
    """``$SLURMD_NODENAME`` when set, else the short host name."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def make_nvml() -> NvmlLib:
    """The production NVML layer (tests replace this module attribute to fake NVML)."""
    return PynvmlLib()


def _nvml_default() -> NvmlLib:
    return make_nvml()  # looked up at call time


@dataclass
class ProbeInputs:
    """Injected collaborators (tests replace them; production uses the defaults)."""

    nvml: Callable[[], NvmlLib] = _nvml_default
    host: Callable[[Sequence[str]], HostSample] = probe_host
    owner: Callable[[int], ProcessOwner] = process_owner
    clock: Callable[[], float] = time.time
    read_text: Callable[[str], str | None] = _read_text
    read_kmsg: Callable[[str], list[str]] = read_records
    boot_id: Callable[[], str | None] = read_boot_id


def run_probe(
    node: str | None = None,
    *,
    config: ProbeConfig | None = None,
    jobs: Sequence[Job] | None = None,
    inputs: ProbeInputs | None = None,
) -> ProbeResult:
    """Probe this node. Never raises for NVML trouble (it is in the result).

    Args:
        node: the node's Slurm name (default: :func:`default_node_name`).
        config: probe settings.
        jobs: jobs of a fresh snapshot, to map GPUs to the jobs holding them;
            None when Slurm could not be read (the processes are used instead).
        inputs: injected collaborators.
    """
    cfg = config or ProbeConfig()
    inp = inputs or ProbeInputs()
    node = node or default_node_name()
    t0 = time.monotonic()
    taken_at = inp.clock()
    readout: GpuReadout = read_gpus(
        inp.nvml, deadline_s=cfg.nvml_deadline_s, xid_wait_ms=cfg.xid_wait_ms
    )
    gpus = [_with_owners(g, inp.owner) for g in readout.gpus]
    source = "none"
    if gpus:
        holders: dict[int, Holder] = {}
        if jobs is not None:
            holders = _holders(node, jobs, gpus, cfg, inp)
            source = "slurm"
        else:
            holders = _holders_from_processes(gpus)
            source = "processes"
        gpus = [
            dataclasses.replace(g, job_id=holders[g.index].job_id, job_user=holders[g.index].user)
            if g.index in holders
            else g
            for g in gpus
        ]
    kxids, kerr = _kernel_xids(cfg, inp, gpus)
    host = inp.host(cfg.disk_paths) if cfg.with_host else None
    return ProbeResult(
        node=node,
        taken_at=taken_at,
        duration_s=round(time.monotonic() - t0, 3),
        gpus=tuple(gpus),
        driver_version=readout.driver_version,
        nvml_ok=readout.nvml_ok,
        gpu_reason=readout.reason,
        nvml_timed_out=readout.timed_out,
        host=host,
        allocation_source=source,
        kernel_xids=kxids,
        kernel_log_error=kerr,
        boot_id=inp.boot_id(),
    )


def _kernel_xids(
    cfg: ProbeConfig, inp: ProbeInputs, gpus: Sequence[GpuSample]
) -> tuple[tuple[KernelXid, ...], str | None]:
    if not cfg.kmsg_path:
        return (), None
    try:
        found = parse_records(inp.read_kmsg(cfg.kmsg_path))
    except OSError as exc:
        log.info("kernel log %s unreadable: %s", cfg.kmsg_path, exc)
        return (), f"{cfg.kmsg_path}: {exc.strerror or exc}"
    by_pci = {pci_key(g.pci_bus_id): g.index for g in gpus if g.pci_bus_id}
    return tuple(dataclasses.replace(x, gpu_index=by_pci.get(x.pci)) for x in found), None


def _with_owners(g: GpuSample, owner: Callable[[int], ProcessOwner]) -> GpuSample:
    if not g.processes:
        return g
    procs = []
    for p in g.processes:
        o = owner(p.pid)
        procs.append(dataclasses.replace(p, user=o.user, job_id=o.job_id, cgroup=o.cgroup))
    return dataclasses.replace(g, processes=tuple(procs))


def _holders(
    node: str, jobs: Sequence[Job], gpus: Sequence[GpuSample], cfg: ProbeConfig, inp: ProbeInputs
) -> dict[int, Holder]:
    files: tuple[str, ...] = ()
    if cfg.gres_conf:
        text = inp.read_text(cfg.gres_conf)
        if text is not None:
            _, files = gres_gpus_for(parse_gres_conf(text), node)
    minors = {g.index: g.minor for g in gpus if g.minor is not None}
    return holders_from_jobs(jobs, node, gres_files=files, minors=minors)


def _holders_from_processes(gpus: Sequence[GpuSample]) -> dict[int, Holder]:
    out: dict[int, Holder] = {}
    for g in gpus:
        for p in g.processes:
            if p.job_id is not None:
                out[g.index] = Holder(p.job_id, p.user or "")
                break
    return out
