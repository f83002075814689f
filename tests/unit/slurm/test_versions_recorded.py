"""The adapters over every recorded Slurm output: the same cluster and jobs on
22.05, 24.11 and 26.05 must give the same normalized model.

Fields allowed to differ between versions (and why):
* times (submit / eligible / start / end), job ids and ``work_dir``: the
  recordings ran at different moments in different directories;
* the PLANNED node flag: a transient backfill mark, set when the scheduler ran;
* a pending job's scheduler verdict (``Resources`` vs ``PartitionNodeLimit``);
* ``nodes_max``: Slurm's internal upper bound (0, 1 or ntasks by version).
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from slurmopt.model import Job, JobState, NodeState, Snapshot
from slurmopt.slurm.backend import CliBackend

from .fakes import VERSIONS, recorded_runner

ALL = (*VERSIONS, "26.05-v0.0.42")
SCHEDULER_VERDICTS = {"Resources", "Priority", "PartitionNodeLimit"}


def snap(version: str, *, extra: bool = False) -> Snapshot:
    return CliBackend(recorded_runner(version, extra=extra), clock=lambda: 1_000).snapshot()


def node_key(n: object) -> tuple[object, ...]:
    d = dataclasses.asdict(n)  # type: ignore[call-overload]
    d["flags"] = sorted(set(d["flags"]) - {"PLANNED"})
    return tuple(sorted((k, repr(v)) for k, v in d.items()))


def job_key(j: Job) -> tuple[object, ...]:
    d = dataclasses.asdict(j)
    for k in ("submit_time", "eligible_time", "start_time", "end_time", "work_dir"):
        d.pop(k)
    # Job ids differ between recordings; arrays keep their id relation.
    d["array_job_id"] = None if j.array_job_id is None else j.array_job_id - j.job_id
    d.pop("job_id")
    d["request"].pop("nodes_max")
    if j.pending and d["reason"] in SCHEDULER_VERDICTS:
        d["reason"] = "<verdict>"
    return tuple(sorted((k, repr(v)) for k, v in d.items()))


@pytest.mark.parametrize("version", ALL)
def test_snapshot_reads_every_version(version: str) -> None:
    s = snap(version)
    assert s.slurm_version.startswith(version[:5])
    assert s.source == f"cli-{version[:5]}"
    assert [n.name for n in s.nodes] == ["cpu1", "cpu2", "gpu-a1", "gpu-a2", "gpu-h1", "gpu-h2"]
    assert {p.name: p.nodes for p in s.partitions} == {
        "a100": ("gpu-a1", "gpu-a2"),
        "h100": ("gpu-h1", "gpu-h2"),
        "cpu": ("cpu1", "cpu2"),
    }
    assert s.default_partition is not None and s.default_partition.name == "cpu"
    assert s.node("gpu-a1").gpus == {"a100": 4}
    assert s.node("gpu-h1").gpus_used == {"h100": 2}
    assert s.node("cpu1").gpus == {} and s.node("cpu1").gpus_used == {}
    # j1 (--gres=gpu:a100:2 -c 2 --mem=2000) runs with GPUs 0-1 on gpu-a1.
    j1 = next(j for j in s.jobs if j.name == "gpu-a100-gres")
    assert j1.running and j1.nodes == ("gpu-a1",)
    assert j1.gpu_indexes == {"gpu-a1": (0, 1)} and j1.gpus_alloc == {"a100": 2}
    assert j1.request.gpu_type == "a100" and j1.request.gpus_per_node == 2
    assert j1.request.cpus_per_task == 2 and j1.request.mem_per_node_mb == 2000
    assert j1.request.gres == "gres/gpu:a100:2"
    assert j1.comment == "slurmopt j1"
    # JSON round trip keeps everything.
    assert Snapshot.from_dict(json.loads(json.dumps(s.to_dict()))) == s


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_same_model_as_2205(version: str) -> None:
    ref, other = snap("22.05"), snap(version)
    assert [node_key(n) for n in other.nodes] == [node_key(n) for n in ref.nodes]
    assert other.partitions == ref.partitions
    ref_jobs = {j.name: job_key(j) for j in ref.jobs}
    other_jobs = {j.name: job_key(j) for j in other.jobs}
    assert len(ref_jobs) == 8
    assert other_jobs == ref_jobs


def test_pinned_v0042_matches_v0045_on_2605() -> None:
    pinned, plain = snap("26.05-v0.0.42"), snap("26.05")
    assert pinned.partitions == plain.partitions
    assert [node_key(n) for n in pinned.nodes] == [node_key(n) for n in plain.nodes]


def test_pinned_parser_refused_falls_back_once() -> None:
    runner = recorded_runner("26.05")
    backend = CliBackend(runner)
    backend.snapshot()
    backend.snapshot()
    pinned_calls = [c for c in runner.calls if "--json=v0.0.42" in c]
    # One refusal, then plain --json for the rest of the backend's life.
    assert len(pinned_calls) == 1
    assert ("scontrol", "show", "nodes", "--json") in runner.calls


@pytest.mark.parametrize("version", ("24.11", "26.05-v0.0.42"))
def test_v0042_partitions_take_default_from_oneliner(version: str) -> None:
    runner = recorded_runner(version)
    s = CliBackend(runner).snapshot()
    assert ("scontrol", "--all", "-o", "show", "partitions") in runner.calls
    assert [p.name for p in s.partitions if p.is_default] == ["cpu"]


def test_v0045_has_default_flag_without_oneliner() -> None:
    runner = recorded_runner("26.05")
    s = CliBackend(runner).snapshot()
    assert ("scontrol", "--all", "-o", "show", "partitions") not in runner.calls
    assert [p.name for p in s.partitions if p.is_default] == ["cpu"]


@pytest.mark.parametrize("version", VERSIONS)
def test_partition_limits(version: str) -> None:
    s = snap(version)
    a100, h100, cpu = s.partition("a100"), s.partition("h100"), s.partition("cpu")
    assert (a100.max_time_s, a100.default_time_s, a100.max_nodes) == (2 * 86400, 3600, 2)
    assert (h100.max_time_s, h100.default_time_s, h100.max_nodes) == (12 * 3600, None, 1)
    assert (cpu.max_time_s, cpu.max_nodes) == (None, None)
    assert all(p.allow_accounts is None and p.allow_qos is None for p in s.partitions)
    assert all(p.up and p.total_cpus == 16 and p.oversubscribe == "NO" for p in s.partitions)


@pytest.mark.parametrize("version", VERSIONS)
def test_job_details(version: str) -> None:
    jobs = {j.name: j for j in snap(version).jobs}
    j2 = jobs["gpu-h100-gpus"]  # --gpus=2: per job, untyped; runs on h100 GPUs 0-1
    assert (j2.request.gpus_per_job, j2.request.gpu_type) == (2, None)
    assert j2.request.tres_per_job == "gres/gpu:2" and j2.gpus_alloc == {"h100": 2}
    j3 = jobs["multi-part-pend"]  # -p a100,h100 --gres=gpu:4 -N2
    assert j3.pending and j3.partitions == ("a100", "h100")
    assert (j3.request.nodes_min, j3.request.gpus_per_node, j3.request.gpu_type) == (2, 4, None)
    assert j3.request.gpus_total() == 8 and j3.comment == "needs 8 gpus"
    j4 = jobs["held-user"]
    assert j4.held and j4.reason == "JobHeldUser" and j4.priority == 0
    j5 = jobs["gpn-begin"]  # --gpus-per-node=h100:1 --nice=100 --begin=+1h
    assert (j5.request.gpus_per_node, j5.request.gpu_type, j5.nice) == (1, "h100", 100)
    assert j5.reason == "BeginTime" and j5.start_time is not None
    j7 = jobs["dep-pend"]
    assert j7.dependency == "afterok:1(unfulfilled)" and j7.start_time is None
    j8 = jobs["admin-held"]
    assert j8.held and j8.reason == "JobHeldAdmin" and j8.partitions == ("cpu", "a100")
    assert j8.request.ntasks == 4 and j8.request.cpus_min == 4
    assert all(j.request.time_limit_s is not None for j in jobs.values())


@pytest.mark.parametrize("version", VERSIONS)
def test_extra_states_and_jobs(version: str) -> None:
    s = snap(version, extra=True)
    cpu2, h2 = s.node("cpu2"), s.node("gpu-h2")
    assert cpu2.state == NodeState.IDLE and "DRAIN" in cpu2.flags and cpu2.drained
    assert cpu2.reason == "slurmopt-test" and not cpu2.available
    assert h2.state == NodeState.DOWN and h2.reason == "down-test" and not h2.available
    assert s.node("cpu1").available
    jobs = {j.name: j for j in s.jobs if j.state == JobState.PENDING}
    inf, arr, tmin = jobs["inf-time"], jobs["arr"], jobs["tmin"]
    assert inf.request.time_limit_s is None
    assert arr.array_job_id == arr.job_id and arr.array_task_id == "0-3"
    assert arr.key == f"{arr.job_id}_0-3"
    assert (arr.request.gpus_per_node, arr.request.gpu_type) == (1, None)
    assert tmin.request.time_min_s == 30 * 60 and tmin.request.time_limit_s == 2 * 3600
    assert tmin.request.mem_per_cpu_mb == 500 and tmin.request.mem_per_node_mb is None
    assert all(j.held for j in (inf, arr, tmin))


def test_extra_same_across_versions() -> None:
    keys = {}
    for v in VERSIONS:
        s = snap(v, extra=True)
        keys[v] = (
            [node_key(n) for n in s.nodes],
            {j.name: job_key(j) for j in s.jobs if j.name in ("inf-time", "arr", "tmin")},
        )
    assert keys["24.11"] == keys["22.05"]
    assert keys["26.05"] == keys["22.05"]


def test_v0042_partitions_take_preempt_mode_from_oneliner() -> None:
    from dataclasses import replace

    from slurmopt.slurm.parse_partitions import apply_oneliner, parse_partitions_text

    line = (
        "PartitionName=scav Default=NO PriorityTier=1 PreemptMode=REQUEUE State=UP Nodes=n1\n"
        "PartitionName=cpu Default=YES PriorityTier=1 PreemptMode=OFF State=UP Nodes=n2\n"
    )
    json_like = tuple(
        replace(p, preempt_mode=None, is_default=False) for p in parse_partitions_text(line)
    )
    got = {p.name: p for p in apply_oneliner(json_like, line)}
    assert got["scav"].preempt_mode == "REQUEUE" and not got["scav"].is_default
    assert got["cpu"].preempt_mode is None and got["cpu"].is_default
