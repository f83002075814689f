"""Trace readers: field mapping, unknown values, cleaning options."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmopt.sim.traces import (
    SWF_FIELDS,
    Cleaning,
    read_alibaba_nodes,
    read_alibaba_pods,
    read_csv,
    read_swf,
    read_trace,
)

from .conftest import ALIBABA_ALL_NODES, ALIBABA_GPU_NODES, ALIBABA_PODS

SWF = """\
; Version: 2.2
; Computer: Test machine
; MaxNodes: 8
; MaxProcs: 16
; UnixStartTime: 1000
; Note: a long note
;       that continues
    1   0   5  100  4  -1  -1  4  200  1024  1  7  3  2  1  2  -1  -1
    2  10  -1   -1  2  -1  -1  2  100    -1  5  8  3 -1 -1 -1  -1  -1
    3  20   0    0  1  -1  -1  1   60    -1  1  7  3 -1 -1 -1  -1  -1
    4  30   2  500  8  -1  -1 -1  300    -1  0  9 -1 -1 -1  1  -1  -1
"""


@pytest.fixture
def swf(tmp_path: Path) -> Path:
    p = tmp_path / "t.swf"
    p.write_text(SWF)
    return p


def test_swf_fields_and_header(swf: Path) -> None:
    tr = read_swf(swf, cleaning=Cleaning.none())
    assert tr.records == 4 and len(tr) == 4
    assert (tr.max_nodes, tr.max_procs, tr.unix_start) == (8, 16, 1000)
    assert tr.header["Computer"] == "Test machine"
    assert tr.header["Note"] == "a long note that continues"
    j1 = tr.jobs[0]
    assert (j1.submit, j1.wait, j1.runtime, j1.cpus) == (0, 5, 100, 4.0)
    assert j1.requested_time == 200  # field 9
    assert j1.partition == "2"  # field 16
    assert j1.queue == "1"  # field 15
    assert j1.job_type == "app2"  # field 14
    assert (j1.user, j1.group, j1.status) == ("7", "3", "completed")
    assert j1.memory_mb == pytest.approx(4.0)  # 1024 KB per processor x 4
    assert len(j1.extra) == len(SWF_FIELDS) == 18
    assert (j1.start, j1.finish) == (5, 105)


def test_swf_minus_one_is_unknown(swf: Path) -> None:
    tr = read_swf(swf, cleaning=Cleaning.none())
    j2 = tr.jobs[1]
    assert j2.wait is None and not j2.started and j2.runtime == 0
    assert j2.status == "cancelled"
    assert j2.partition is None and j2.queue is None and j2.job_type is None
    assert j2.memory_mb is None
    j4 = tr.jobs[3]
    assert j4.group is None and j4.status == "failed" and j4.cpus == 8.0


def test_swf_cleaning_defaults_and_options(swf: Path) -> None:
    tr = read_swf(swf)  # defaults: drop never started and zero runtimes
    assert [j.job_id for j in tr] == [1, 4]
    assert tr.dropped == {"never_started": 1, "zero_runtime": 1}
    clip = read_swf(swf, cleaning=Cleaning(over_request="clip"))
    assert [j.runtime for j in clip] == [100, 300]
    drop = read_swf(swf, cleaning=Cleaning(over_request="drop"))
    assert [j.job_id for j in drop] == [1]
    nofail = read_swf(swf, cleaning=Cleaning(drop_failed=True))
    assert [j.job_id for j in nofail] == [1]


def test_swf_rejects_short_lines(tmp_path: Path) -> None:
    p = tmp_path / "bad.swf"
    p.write_text("1 2 3\n")
    with pytest.raises(ValueError, match="18"):
        read_swf(p)


def test_alibaba_pods(tmp_path: Path) -> None:
    p = tmp_path / "pods.csv"
    p.write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\n"
        "openb-pod-0007,6000,12288,1,460,,LS,Running,100,900,150\n"
        "openb-pod-0008,88000,327680,8,1000,V100M16|V100M32,BE,Succeeded,200,500,200\n"
        "openb-pod-0009,1000,1024,0,0,,BE,Pending,300,400,\n"
    )
    tr = read_alibaba_pods(p, cleaning=Cleaning.none())
    a, b, c = tr.jobs
    assert (a.job_id, a.submit, a.wait, a.runtime) == (7, 100, 50, 750)
    assert a.gpus == pytest.approx(0.46) and a.gpus_whole == 1 and a.cpus == 6.0
    assert a.nodes == 1 and a.queue == "LS" and a.status == "running"
    assert b.gpus == 8.0 and b.gpu_types == ("V100M16", "V100M32")
    assert c.wait is None and c.gpus == 0 and c.gpus_whole == 0
    assert [j.job_id for j in read_alibaba_pods(p)] == [7, 8]


def test_alibaba_real_sample() -> None:
    """The head of the real Alibaba GPU v2023 files (tests/data/traces; 24 pods never started)."""
    tr = read_alibaba_pods(ALIBABA_PODS)
    assert tr.records == 400
    assert tr.dropped == {"never_started": 24}
    assert len(tr) == 376
    assert all(j.runtime > 0 and j.nodes == 1 for j in tr)
    nodes = read_alibaba_nodes(ALIBABA_ALL_NODES)
    assert len(nodes) == 100 and all(n.gpus == 0 for n in nodes)
    gpu_nodes = read_alibaba_nodes(ALIBABA_GPU_NODES)
    assert len(gpu_nodes) == 100 and all(n.model and n.gpus > 0 for n in gpu_nodes)


def test_kth_real_sample_is_complete(kth_sample: Path) -> None:
    """The header and first 400 jobs of the real KTH-SP2 log."""
    tr = read_trace(kth_sample, "swf", cleaning=Cleaning.none())
    assert tr.records == len(tr) == 400
    assert tr.max_nodes == 100 and tr.max_procs == 100
    assert tr.jobs == tuple(sorted(tr.jobs, key=lambda j: (j.submit, j.job_id)))


def test_generic_csv(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(
        "job_id,submit,runtime,wait,gpus,gpu_type,partition,job_type,color\n"
        "1,0,60,,0.5,a100|h100,gpu,ResNet-50,red\n"
        "2,5,0,-1,,,,,\n"
    )
    tr = read_csv(p, cleaning=Cleaning.none())
    a, b = tr.jobs
    assert a.wait is None and a.gpus == 0.5 and a.gpu_types == ("a100", "h100")
    assert a.partition == "gpu" and a.job_type == "ResNet-50" and a.extra == {"color": "red"}
    assert b.cpus == 1.0 and b.gpus == 0.0 and b.name == "job2"
    assert len(read_csv(p, cleaning=Cleaning(drop_never_started=False))) == 1
    with pytest.raises(ValueError, match="unknown trace format"):
        read_trace(p, "xml")
