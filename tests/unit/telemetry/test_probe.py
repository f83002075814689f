"""The probe against the fake NVML: every fault, MIG, missing fields, watchdog, jobs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from slurmopt.model import Job, JobState
from slurmopt.telemetry.host import HostSample, ProcessOwner
from slurmopt.telemetry.nvml import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_ERROR_UNKNOWN,
    NvmlCallError,
    decode_throttle_reasons,
)
from slurmopt.telemetry.probe import ProbeConfig, ProbeInputs, ProbeResult, run_probe

from .fake_nvml import GIB, FakeGpu, FakeMig, FakeNvml

HOST = HostSample(
    cpu_count=8,
    cpu_percent=12.5,
    load_1m=1.0,
    load_5m=0.5,
    load_15m=0.2,
    memory_total_mb=64000,
    memory_available_mb=32000,
    memory_percent=50.0,
    swap_total_mb=0,
    swap_used_mb=0,
)


def probe(
    fake: FakeNvml,
    *,
    jobs: list[Job] | None = None,
    gres: str | None = None,
    owners: dict[int, ProcessOwner] | None = None,
    kmsg: list[str] | None = None,
    **cfg: object,
) -> ProbeResult:
    inputs = ProbeInputs(
        nvml=lambda: fake,
        host=lambda paths: HOST,
        owner=lambda pid: (owners or {}).get(pid, ProcessOwner(None, None, None)),
        clock=lambda: 1_700_000_000.0,
        read_text=lambda path: gres,
        read_kmsg=lambda path: kmsg or [],
        boot_id=lambda: "boot-1",
    )
    config = ProbeConfig(**{"xid_wait_ms": 0, "nvml_deadline_s": 5.0, **cfg})  # type: ignore[arg-type]
    return run_probe("gpu-a1", config=config, jobs=jobs, inputs=inputs)


def two_gpus() -> list[FakeGpu]:
    return [FakeGpu(uuid="GPU-a", minor=0), FakeGpu(uuid="GPU-b", minor=1, temp=70)]


def test_healthy_gpus_all_fields() -> None:
    g = FakeGpu(
        uuid="GPU-a",
        ecc={(False, False): 3, (True, True): 1},
        throttle=0x24,
        rows=(2, 0, False, False),
        pages=(1, 0),
        procs=[(4242, 2 * GIB)],
    )
    res = probe(FakeNvml([g]))
    assert res.nvml_ok and res.gpu_reason is None and res.driver_version == "550.54.15"
    (s,) = res.gpus
    assert (s.uuid, s.name, s.minor) == ("GPU-a", "NVIDIA A100-SXM4-80GB", 0)
    assert (s.util_sm_pct, s.util_mem_pct) == (50, 20)
    assert (s.memory_used_mb, s.memory_total_mb) == (10240, 81920)
    assert s.temperature_c == 45 and s.power_w == 250.0 and s.power_limit_w == 400.0
    assert s.throttle_reasons == ("sw_power_cap", "sw_thermal_slowdown")
    assert s.ecc_volatile_corrected == 3 and s.ecc_volatile_uncorrected == 0
    assert s.ecc_aggregate_uncorrected == 1 and s.ecc_aggregate_corrected == 0
    assert (s.remapped_rows_corrected, s.remap_pending, s.remap_failed) == (2, False, False)
    assert (s.retired_pages_sbe, s.retired_pages_dbe, s.retired_pages_pending) == (1, 0, False)
    assert (s.pcie_gen, s.pcie_width) == (4, 16)
    assert s.processes[0].pid == 4242 and s.processes[0].used_memory_mb == 2048
    assert s.mig_enabled is None and s.errors == () and not s.lost
    assert res.host == HOST


def test_not_supported_fields_are_absent_not_errors() -> None:
    faults = {
        m: NVML_ERROR_NOT_SUPPORTED
        for m in (
            "ecc_errors",
            "remapped_rows",
            "retired_pages",
            "retired_pages_pending",
            "power_usage_mw",
            "throttle_reasons",
            "pcie_gen",
            "temperature",
        )
    }
    res = probe(FakeNvml([FakeGpu(faults=faults)]))
    (s,) = res.gpus
    assert s.errors == ()
    assert s.ecc_volatile_uncorrected is None and s.ecc_aggregate_corrected is None
    assert s.remap_failed is None and s.retired_pages_dbe is None and s.power_w is None
    assert s.throttle_reasons is None and s.pcie_gen is None and s.temperature_c is None
    assert s.pcie_width == 16 and s.memory_total_mb == 81920


def test_nvml_error_mid_probe_is_kept_per_gpu_and_probe_goes_on() -> None:
    gpus = two_gpus()
    gpus[0].faults = {"temperature": NVML_ERROR_UNKNOWN, "utilization": NVML_ERROR_NO_PERMISSION}
    res = probe(FakeNvml(gpus))
    a, b = res.gpus
    assert {e.field for e in a.errors} == {"temperature", "utilization"}
    assert {e.code for e in a.errors} == {NVML_ERROR_UNKNOWN, NVML_ERROR_NO_PERMISSION}
    assert a.temperature_c is None and a.memory_total_mb == 81920  # later fields still read
    assert b.errors == () and b.temperature_c == 70


def test_lost_gpu_stops_reading_that_gpu_only() -> None:
    gpus = two_gpus()
    gpus[0].lost_after = "temperature"
    fake = FakeNvml(gpus)
    res = probe(fake)
    a, b = res.gpus
    assert a.lost and a.uuid == "GPU-a" and a.temperature_c is None and a.pcie_width is None
    assert [e.code for e in a.errors] == [NVML_ERROR_GPU_IS_LOST]
    assert not b.lost and b.temperature_c == 70
    assert fake.shut_down


def test_lost_at_handle() -> None:
    gpus = two_gpus()
    gpus[1].faults = {"handle": NVML_ERROR_GPU_IS_LOST}
    res = probe(FakeNvml(gpus))
    assert res.gpus[1].lost and res.gpus[1].uuid is None and res.nvml_ok


@pytest.mark.parametrize("code", [NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_LIBRARY_NOT_FOUND])
def test_no_driver_is_a_valid_empty_result(code: int) -> None:
    res = probe(FakeNvml(init_error=code))
    assert res.gpus == () and not res.nvml_ok
    assert res.gpu_reason is not None and res.gpu_reason.startswith("no NVIDIA driver")
    assert res.host == HOST


def test_no_nvml_library_at_all() -> None:
    def boom() -> FakeNvml:
        raise NvmlCallError(NVML_ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1 not found")

    res = run_probe(
        "n", config=ProbeConfig(xid_wait_ms=0, with_host=False), inputs=ProbeInputs(nvml=boom)
    )
    assert res.gpus == () and res.gpu_reason is not None and "no NVML library" in res.gpu_reason
    assert res.host is None


def test_no_gpu() -> None:
    res = probe(FakeNvml([]))
    assert res.nvml_ok and res.gpus == () and res.gpu_reason == "no GPU found by NVML"


def test_device_count_failure() -> None:
    res = probe(FakeNvml(two_gpus(), count_error=NVML_ERROR_UNKNOWN))
    assert not res.nvml_ok and res.gpu_reason is not None and "device count" in res.gpu_reason


def test_mig_devices_with_empty_slot() -> None:
    g = FakeGpu(mig=[FakeMig("MIG-1"), None, FakeMig("MIG-3", used=0, total=20 * GIB)])
    (s,) = probe(FakeNvml([g])).gpus
    assert s.mig_enabled is True
    assert [(m.index, m.uuid, m.memory_total_mb) for m in s.mig_devices] == [
        (0, "MIG-1", 10240),
        (2, "MIG-3", 20480),
    ]
    assert s.errors == ()


def test_xids_reported_per_gpu() -> None:
    gpus = two_gpus()
    gpus[1].xids = [79, 48]
    res = probe(FakeNvml(gpus), xid_wait_ms=50)
    assert res.gpus[0].xids == () and res.gpus[1].xids == (79, 48)


def test_watchdog_returns_partial_result_instead_of_hanging() -> None:
    gpus = two_gpus()
    gpus[1].hang_on = "temperature"
    fake = FakeNvml(gpus)
    t0 = time.monotonic()
    try:
        res = probe(fake, nvml_deadline_s=0.5)
    finally:
        fake.release.set()
    assert time.monotonic() - t0 < 3
    assert res.nvml_timed_out and not res.nvml_ok
    assert res.gpu_reason is not None and "reading GPU 1" in res.gpu_reason
    assert [g.uuid for g in res.gpus] == ["GPU-a"]


def test_throttle_decoding_unknown_bits() -> None:
    assert decode_throttle_reasons(0) == ()
    assert decode_throttle_reasons(0x41 | 0x10000) == (
        "gpu_idle",
        "hw_thermal_slowdown",
        "other_0x10000",
    )


def _job(
    jid: int, user: str, idx: dict[str, tuple[int, ...]], state: JobState = JobState.RUNNING
) -> Job:
    return Job(
        job_id=jid,
        name="j",
        user=user,
        state=state,
        partitions=("a100",),
        nodes=tuple(idx),
        gpu_indexes=idx,
    )


def test_holders_from_allocation_identity() -> None:
    jobs = [
        _job(7, "alice", {"gpu-a1": (1,)}),
        _job(8, "bob", {"gpu-a2": (0,)}),
        _job(9, "carol", {"gpu-a1": (0,)}, JobState.PENDING),
    ]
    res = probe(FakeNvml(two_gpus()), jobs=jobs)
    assert res.allocation_source == "slurm"
    assert (res.gpus[0].job_id, res.gpus[1].job_id, res.gpus[1].job_user) == (None, 7, "alice")


def test_holders_mapped_through_gres_conf_minors() -> None:
    gres = "AutoDetect=off\nNodeName=gpu-a[1-2] Name=gpu Type=a100 File=/dev/nvidia[5,3]\n"
    gpus = [FakeGpu(uuid="GPU-a", minor=3), FakeGpu(uuid="GPU-b", minor=5)]
    # Slurm IDX 0 is the first File= device, /dev/nvidia5, which NVML lists as index 1.
    res = probe(FakeNvml(gpus), jobs=[_job(7, "alice", {"gpu-a1": (0,)})], gres=gres)
    assert res.gpus[1].job_id == 7 and res.gpus[0].job_id is None


def test_holders_fall_back_to_processes_and_owners() -> None:
    gpus = two_gpus()
    gpus[0].procs = [(100, GIB)]
    owners = {100: ProcessOwner("alice", 55, "/system.slice/slurmstepd.scope/job_55/step_0")}
    res = probe(FakeNvml(gpus), owners=owners)
    assert res.allocation_source == "processes"
    p = res.gpus[0].processes[0]
    assert (p.user, p.job_id) == ("alice", 55) and res.gpus[0].job_id == 55


def test_json_round_trip() -> None:
    gpus = two_gpus()
    gpus[0].mig = [FakeMig("MIG-1")]
    gpus[0].procs = [(1, None)]
    gpus[1].faults = {"temperature": NVML_ERROR_UNKNOWN}
    res = probe(FakeNvml(gpus))
    text = json.dumps(res.to_dict())
    back = ProbeResult.from_dict(json.loads(text))
    assert back == res
    with pytest.raises(ValueError):
        ProbeResult.from_dict({**res.to_dict(), "format": 99})


KMSG = [
    "6,100,5000,-;usb 1-1: new device",
    "4,101,6000,-;NVRM: Xid (PCI:0000:11:00): 79, pid=1234, GPU has fallen off the bus.",
    "4,102,7000,-;NVRM: Xid (PCI:0000:10:00): 13, pid=77, Graphics Exception",
    "4,103,8000,-;NVRM: Xid (PCI:0000:af:00): 48, pid='<unknown>', DBE",
    "broken record without a separator",
]


def test_kernel_xids_mapped_to_gpus_by_pci_bus() -> None:
    # The fake's PCI bus ids are 00000000:10:00.0 and 00000000:11:00.0 (0x10 + minor).
    res = probe(FakeNvml(two_gpus()), kmsg=KMSG)
    got = [(x.seq, x.pci, x.xid, x.gpu_index) for x in res.kernel_xids]
    assert got == [(101, "11:00", 79, 1), (102, "10:00", 13, 0), (103, "af:00", 48, None)]
    assert res.boot_id == "boot-1" and res.kernel_log_error is None
    assert ProbeResult.from_dict(json.loads(json.dumps(res.to_dict()))) == res


def test_kernel_log_unreadable_is_not_fatal() -> None:
    def denied(path: str) -> list[str]:
        raise PermissionError(1, "Operation not permitted")

    inputs = ProbeInputs(nvml=lambda: FakeNvml([]), read_kmsg=denied, host=lambda p: HOST)
    res = run_probe("n", config=ProbeConfig(xid_wait_ms=0), inputs=inputs)
    assert res.kernel_xids == () and res.kernel_log_error is not None
    assert "Operation not permitted" in res.kernel_log_error


def test_read_records_from_a_saved_file(tmp_path: Path) -> None:
    from slurmopt.telemetry.kmsg import pci_key, read_records

    f = tmp_path / "kmsg.txt"
    f.write_text("\n".join(KMSG) + "\n")
    assert read_records(str(f)) == KMSG
    assert pci_key("00000000:3B:00.0") == "3b:00" == pci_key("0000:3b:00")
