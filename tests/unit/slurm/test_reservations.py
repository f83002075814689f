"""``scontrol -o show reservations`` (recorded on the 22.05 testbed; the oneliner text is
the same through 26.05) and the partition fields QoS / PreemptMode."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from slurmopt.model import Job, JobState, Reservation, Snapshot
from slurmopt.slurm.parse_partitions import parse_partition_line
from slurmopt.slurm.parse_reservations import parse_reservations_text

DATA = Path(__file__).resolve().parents[2] / "data" / "slurm-recorded" / "22.05"


def test_recorded_reservation() -> None:
    (r,) = parse_reservations_text((DATA / "scontrol_show_reservations_oneliner.txt").read_text())
    assert r.name == "slurmopt_rec" and r.nodes == ("gpu-a1", "gpu-a2")
    assert (r.users, r.accounts) == (("root",), ("ml",))
    assert r.flags == ("IGNORE_JOBS", "SPEC_NODES")
    start = int(datetime(2026, 12, 3, 22, 25, 24).timestamp())
    assert (r.start, r.end) == (start, start + 3600)
    assert r.active(start) and r.active(start + 3599) and not r.active(start + 3600)
    assert parse_reservations_text("No reservations in the system\n") == ()


def test_reserved_nodes_spare_the_job_that_asked() -> None:
    resv = Reservation("r", ("n1", "n2"), start=0, end=100)
    snap = Snapshot(taken_at=50, nodes=(), partitions=(), jobs=(), reservations=(resv,))
    other = Job(job_id=1, name="x", user="u", state=JobState.PENDING, partitions=("p",))
    assert snap.reserved_nodes(other) == {"n1": "r", "n2": "r"}
    assert snap.reserved_nodes(Job(**{**_fields(other), "reservation": "r"})) == {}
    assert snap.reserved_nodes(other, at=100) == {}
    assert Snapshot.from_dict(snap.to_dict()).reservations == (resv,)
    from slurmopt.model import QosLimits

    with_qos = Snapshot(taken_at=1, nodes=(), partitions=(), jobs=(), qos=(QosLimits("q", 60),))
    assert Snapshot.from_dict(with_qos.to_dict()).qos == with_qos.qos


def _fields(job: Job) -> dict[str, object]:
    return {f: getattr(job, f) for f in job.__dataclass_fields__}


def test_partition_qos_and_preempt_mode() -> None:
    line = "PartitionName=p Nodes=n1 QoS=gpuqos PreemptMode=REQUEUE State=UP MaxTime=UNLIMITED"
    p = parse_partition_line(line)
    assert (p.qos, p.preempt_mode) == ("gpuqos", "REQUEUE")
    unset = parse_partition_line("PartitionName=p Nodes=n1 QoS=N/A PreemptMode=OFF State=UP")
    assert (unset.qos, unset.preempt_mode) == (None, None)


def test_qos_limits_from_sacctmgr() -> None:
    from slurmopt.slurm.accounting import parse_qos

    text = "normal|||\nhigh|||\ngpulim|00:10:00|gres/gpu=2|gres/gpu=3\nlong|1-00:00:00|cpu=8|\n"
    normal, _, gpulim, long = parse_qos(text)
    assert (normal.max_wall_s, normal.max_gpus_per_user, normal.grp_gpus) == (None, None, None)
    assert (gpulim.max_wall_s, gpulim.max_gpus_per_user, gpulim.grp_gpus) == (600, 2, 3)
    assert (long.max_wall_s, long.max_gpus_per_user) == (86400, None)
