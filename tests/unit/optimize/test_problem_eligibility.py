"""Eligibility: every reason a partition can never run a job, and the runtime convention."""

from __future__ import annotations

from dataclasses import replace

import pytest

from slurmopt.model import Job, JobRequest, JobState, Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.eligibility import WHOLE, per_node_demand
from slurmopt.optimize.problem import Problem
from tests.unit.optimize.test_problem_builders import (
    hetero_cluster,
    node,
    part,
    pending,
    snapshot,
)


def reasons_of(snap: Snapshot, job_id: int, **kw: object) -> dict[str, str]:
    prob = Problem.build(snap, **kw)  # type: ignore[arg-type]
    return prob.reasons.get(job_id, {})


def eligible_parts(snap: Snapshot, job_id: int, **kw: object) -> set[str]:
    prob = Problem.build(snap, **kw)  # type: ignore[arg-type]
    for o, job in enumerate(prob.jobs):
        if job.job_id == job_id:
            return {prob.partitions[p].name for p in prob.options[o]}
    return set()


def test_not_in_allowed_set_is_never_a_candidate() -> None:
    snap = hetero_cluster([pending(1, ["a100"])])
    assert eligible_parts(snap, 1) == {"a100"}
    # an explicit allowed set (optsub records what the user allowed) widens it
    allowed = {1: ["a100", "h100", "v100"]}
    assert eligible_parts(snap, 1, allowed=allowed) == {"a100", "h100"}
    assert "exceeds its time limit" in reasons_of(snap, 1, allowed=allowed)["v100"]
    prob = Problem.build(snap)
    assert prob.why_not(1, "h100") == "not in the job's allowed partitions (a100)"
    assert prob.why_not(1, "a100") is None
    assert prob.why_not(1, "nosuch") == "no such partition"


def test_job_without_partitions_may_use_every_partition() -> None:
    job = replace(pending(1, []), partitions=())
    snap = hetero_cluster([job])
    assert eligible_parts(snap, 1) == {"a100", "h100", "v100"}
    assert "partition has no GPUs" in reasons_of(snap, 1)["cpu"]


def test_unknown_partition() -> None:
    snap = hetero_cluster([pending(1, ["a100", "nosuch"])])
    assert reasons_of(snap, 1)["nosuch"] == "no such partition"


def test_partition_down() -> None:
    snap = hetero_cluster([pending(1, ["a100", "h100"])])
    parts = tuple(replace(p, state="DOWN") if p.name == "h100" else p for p in snap.partitions)
    assert reasons_of(replace(snap, partitions=parts), 1) == {"h100": "partition is DOWN"}


@pytest.mark.parametrize(
    ("limits", "job_kw", "expected"),
    [
        ({"allow_accounts": ("chem",)}, {"account": "physics"}, "account physics not in"),
        ({"deny_accounts": ("physics",)}, {"account": "physics"}, "is in DenyAccounts"),
        ({"allow_groups": ("staff",)}, {"group": "students"}, "group students not in"),
        ({"allow_qos": ("high",)}, {"qos": "normal"}, "QOS normal not in AllowQos=high"),
        ({"deny_qos": ("normal",)}, {"qos": "normal"}, "QOS normal is in DenyQos"),
    ],
)
def test_access_limits(limits: dict[str, object], job_kw: dict[str, str], expected: str) -> None:
    job = replace(pending(1, ["a100", "h100"]), **job_kw)  # type: ignore[arg-type]
    snap = hetero_cluster([job])
    parts = tuple(replace(p, **limits) if p.name == "h100" else p for p in snap.partitions)  # type: ignore[arg-type]
    why = reasons_of(replace(snap, partitions=parts), 1)
    assert expected in why["h100"]
    assert "a100" not in why


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"allow_accounts": ("chem",)}, "job's account is not known (-A)"),
        ({"deny_accounts": ("chem",)}, "job's account is not known (-A)"),
        ({"allow_qos": ("high",)}, "job's QOS is not known (-q)"),
        ({"allow_groups": ("ml",)}, "job's group is not known"),
    ],
)
def test_unknown_account_qos_or_group_is_not_placed_where_restricted(
    limits: dict[str, object], reason: str
) -> None:
    # Slurm would take the user's defaults: where the partition restricts them, a job
    # that does not say which it has could be rejected there, so it is not eligible
    snap = hetero_cluster([pending(1, ["a100", "h100"])])
    parts = tuple(replace(p, **limits) if p.name == "h100" else p for p in snap.partitions)  # type: ignore[arg-type]
    snap = replace(snap, partitions=parts)
    assert eligible_parts(snap, 1) == {"a100"}
    assert reason in reasons_of(snap, 1)["h100"]


def test_active_reservation_keeps_its_nodes_from_other_jobs() -> None:
    from slurmopt.model import Reservation

    job = pending(1, ["a100", "h100"], nodes=2)
    snap = hetero_cluster([job])
    t = snap.taken_at
    resv = Reservation("maint", ("h1",), start=t - 60, end=t + 3600, users=("root",))
    later = Reservation("later", ("a1", "a2"), start=t + 7200, end=t + 9000)
    reserved = replace(snap, reservations=(resv, later))
    assert eligible_parts(reserved, 1) == {"a100"}  # one h100 node left for a 2-node job
    assert (
        "1 node(s) in reservation maint, which the job is not in" in reasons_of(reserved, 1)["h100"]
    )
    # the job that asked for it may use it; a finished reservation holds nothing
    asked = replace(snap, jobs=(replace(job, reservation="maint"),), reservations=(resv,))
    assert eligible_parts(asked, 1) == {"a100", "h100"}
    over = Reservation("maint", ("h1",), start=t - 7200, end=t - 60)
    assert eligible_parts(replace(snap, reservations=(over,)), 1) == {"a100", "h100"}


def test_max_and_min_nodes() -> None:
    snap = hetero_cluster([pending(1, ["a100", "h100"], nodes=2, gpus=1)])
    parts = tuple(
        replace(p, max_nodes=1)
        if p.name == "h100"
        else replace(p, min_nodes=3)
        if p.name == "a100"
        else p
        for p in snap.partitions
    )
    why = reasons_of(replace(snap, partitions=parts), 1)
    assert why["h100"] == "job needs 2 nodes, MaxNodes=1"
    assert why["a100"] == "job needs 2 nodes, MinNodes=3"


def test_max_time() -> None:
    snap = hetero_cluster([pending(1, ["h100", "v100"], limit=36 * 3600)])
    why = reasons_of(snap, 1)
    assert why == {"h100": "time limit 1-12:00:00 exceeds MaxTime 1-00:00:00"}


def test_typed_request_pinned_by_default_rewritable_on_request() -> None:
    snap = hetero_cluster([pending(1, ["a100", "h100"], gpu_type="a100")])
    why = reasons_of(snap, 1)
    assert why["h100"] == "job is pinned to GPU type a100; partition has h100"
    prob = Problem.build(snap, rewritable=[1])
    opt = prob.options[0][1]  # h100 is partition index 1? find it by name
    by_name = {prob.partitions[p].name: o for p, o in prob.options[0].items()}
    opt = by_name["h100"]
    assert opt.rewrite == "h100" and opt.gpu_type == "h100"
    assert by_name["a100"].rewrite is None
    # pinned wins over rewritable
    assert "pinned" in reasons_of(snap, 1, rewritable=[1], pinned=[1])["h100"]
    # the config may make typed requests rewritable by default
    prob2 = Problem.build(snap, OptimizeConfig(typed_gpu_rewritable=True))
    assert len(prob2.options[0]) == 2


def test_gpu_job_on_cpu_partition() -> None:
    snap = hetero_cluster([pending(1, ["cpu", "a100"])])
    assert reasons_of(snap, 1) == {"cpu": "partition has no GPUs"}


def test_per_node_limits() -> None:
    snap = hetero_cluster([pending(1, ["a100", "h100"], cpus=32, mem=300_000)])
    parts = tuple(
        replace(p, max_cpus_per_node=16)
        if p.name == "h100"
        else replace(p, max_mem_per_node_mb=100_000)
        if p.name == "a100"
        else p
        for p in snap.partitions
    )
    why = reasons_of(replace(snap, partitions=parts), 1)
    assert why["h100"] == "job needs 32 CPUs per node, MaxCPUsPerNode=16"
    assert why["a100"] == "job needs 300000 MiB per node, MaxMemPerNode=100000"


def test_no_node_fits_counts_drained_nodes() -> None:
    snap = hetero_cluster([pending(1, ["a100"], gpus=4, nodes=3)])
    why = reasons_of(snap, 1)
    assert why["a100"] == (
        "needs 3 node(s) with 4 CPUs, 16000 MiB, 4 a100 GPUs each; "
        "2 available node(s) can ever fit (1 down or drained)"
    )
    big = hetero_cluster([pending(2, ["cpu"], gpus=0, cpus=256)])
    assert "0 available node(s)" in reasons_of(big, 2)["cpu"]


def test_unplaceable_job_is_reported_not_scheduled() -> None:
    snap = hetero_cluster([pending(1, ["v100"], gpus=8), pending(2, ["v100"])])
    prob = Problem.build(snap)
    assert [j.job_id for j in prob.jobs] == [2]
    assert prob.unplaced[1].startswith("v100: needs 1 node(s)")


def test_slower_partition_that_breaks_the_limit_is_ineligible() -> None:
    # listed a100 (speed 2) + v100 (speed 1): the limit holds on the slowest listed (v100)
    snap = hetero_cluster([pending(1, ["a100", "v100"], limit=7200)])
    prob = Problem.build(snap, allowed={1: ["h100", "a100", "v100"]})
    by = {prob.partitions[p].name: o for p, o in prob.options[0].items()}
    assert by["v100"].runtime == pytest.approx(7200)
    assert by["a100"].runtime == pytest.approx(3600)
    assert by["h100"].runtime == pytest.approx(2400)
    # listed only h100 (speed 3): a100 and v100 are slower and would kill the job
    snap2 = hetero_cluster([pending(1, ["h100"], limit=7200)])
    why = reasons_of(snap2, 1, allowed={1: ["h100", "a100", "v100"]})
    assert why["a100"] == ("predicted runtime 03:00:00 at speed 2 exceeds its time limit 02:00:00")
    assert "v100" in why
    # a prediction well under the limit makes the slower partition safe
    prob3 = Problem.build(snap2, allowed={1: ["h100", "a100"]}, runtimes={1: 1800})
    by3 = {prob3.partitions[p].name: o for p, o in prob3.options[0].items()}
    assert by3["a100"].runtime == pytest.approx(2700)
    assert by3["h100"].runtime == pytest.approx(1800)


def test_affinity_and_partition_speed() -> None:
    job = replace(pending(1, ["a100", "h100"], limit=6000), comment="slurmopt:type=llm")
    cfg = OptimizeConfig(affinity={"llm": {"h100": 2.0}}, partition_speed={"a100": 1.5})
    prob = Problem.build(hetero_cluster([job]), cfg)
    by = {prob.partitions[p].name: o for p, o in prob.options[0].items()}
    assert by["h100"].speed == pytest.approx(6.0)
    assert by["a100"].speed == pytest.approx(1.5)
    assert by["a100"].runtime == pytest.approx(6000)  # slowest listed: the reference
    assert by["h100"].runtime == pytest.approx(1500)


def test_job_type_rules() -> None:
    cfg = OptimizeConfig(job_type_rules={"llm": r"(?i)llama|gpt", "cv": "resnet"})
    job = replace(pending(1, ["a100"]), name="train-llama-7b")
    assert cfg.job_type(job) == "llm"
    assert cfg.job_type(replace(job, name="x", comment="resnet50")) == "cv"
    assert cfg.job_type(replace(job, name="x")) is None


def test_per_node_demand_defaults() -> None:
    p = part("x", ["n"], def_mem_per_cpu_mb=2000)
    req = JobRequest(nodes_min=2, cpus_min=16, gpus_per_job=4)
    job = Job(1, "j", "u", pending(1, []).state, ("x",), req)
    assert per_node_demand(job, p) == (2, 8, 16000, 2)
    assert per_node_demand(job, part("y", ["n"]))[2] == WHOLE
    excl = replace(job, request=replace(req, exclusive=True))
    assert per_node_demand(excl, p) == (2, WHOLE, WHOLE, WHOLE)


def test_whole_node_memory_default_needs_an_empty_node() -> None:
    nodes = [node("n1", gpus={"a100": 4}), node("n2", gpus={"a100": 4})]
    jobs = [
        replace(pending(1, ["p"], mem=0), request=JobRequest(gpus_per_node=1, time_limit_s=60)),
        replace(
            pending(2, ["p"], mem=0, priority=10),
            request=JobRequest(gpus_per_node=1, time_limit_s=60),
        ),
        replace(
            pending(3, ["p"], mem=0, priority=1),
            request=JobRequest(gpus_per_node=1, time_limit_s=60),
        ),
    ]
    snap = snapshot(nodes, [part("p", ["n1", "n2"])], jobs)
    prob = Problem.build(snap)
    plan = prob.plan_from(prob.current_genes())
    starts = sorted(pl.predicted_start - prob.now for pl in plan.placements)
    assert starts == [0, 0, 60]  # each job takes a whole node's memory


def test_untyped_request_on_a_mixed_partition_counts_the_slowest_type() -> None:
    snap = hetero_cluster([pending(1, ["mixed", "h100"], limit=3000)])
    parts = (*snap.partitions, part("mixed", ["a1", "a2", "v1"]))
    prob = Problem.build(replace(snap, partitions=parts))
    by = {prob.partitions[p].name: o for p, o in prob.options[0].items()}
    assert by["mixed"].gpu_type == "v100" and by["mixed"].speed == 1.0
    assert by["mixed"].runtime == pytest.approx(3000)  # the slowest listed sets the reference
    assert by["h100"].runtime == pytest.approx(1000)
    # the job may land on any node of the mixed partition that has enough GPUs
    assert {prob.snapshot.nodes[n].name for n in by["mixed"].nodes} == {"a1", "a2", "v1"}


def test_gpu_speed_overrides_keep_the_other_defaults() -> None:
    cfg = OptimizeConfig(gpu_speed={"h100": 4.0, "b200": 6.0})
    assert cfg.speed_of_gpu("H100") == 4.0
    assert cfg.speed_of_gpu("b200") == 6.0
    assert cfg.speed_of_gpu("a100") == 2.0  # built-in default kept
    assert cfg.speed_of_gpu("mystery") == cfg.unknown_gpu_speed
    assert cfg.speed_of_gpu("") == 1.0  # CPU reference
    with pytest.raises(ValueError, match="speed of 'x' must be > 0"):
        OptimizeConfig(partition_speed={"x": 0.0})


def test_constraint_limits_the_nodes() -> None:
    job = pending(1, ["a100", "h100"])
    job = replace(job, request=replace(job.request, constraint="ib"))
    snap = hetero_cluster([job])
    nodes = tuple(replace(n, features=("ib",)) if n.name == "a2" else n for n in snap.nodes)
    prob = Problem.build(replace(snap, nodes=nodes))
    by = {prob.partitions[p].name: o for p, o in prob.options[0].items()}
    assert [prob.snapshot.nodes[n].name for n in by["a100"].nodes] == ["a2"]
    assert prob.reasons[1]["h100"].endswith("can ever fit (constraint ib)")


def test_partition_qos_limits() -> None:
    from slurmopt.model import QosLimits

    lim = QosLimits("gpulim", max_wall_s=600, max_gpus_per_user=2, grp_gpus=3)
    long = replace(
        pending(1, ["a100", "h100"]), request=JobRequest(gpus_per_node=1, time_limit_s=1800)
    )
    many = replace(
        pending(2, ["a100", "h100"]), request=JobRequest(gpus_per_node=3, time_limit_s=300)
    )
    fits = replace(
        pending(3, ["a100", "h100"]), request=JobRequest(gpus_per_node=1, time_limit_s=300)
    )
    snap = hetero_cluster([long, many, fits])
    parts = tuple(replace(p, qos="gpulim") if p.name == "h100" else p for p in snap.partitions)
    snap = replace(snap, partitions=parts, qos=(lim,))
    why = Problem.build(snap).reasons
    assert "exceeds MaxWall 00:10:00 of partition QOS gpulim" in why[1]["h100"]
    assert "exceed MaxTRESPerUser gres/gpu=2 of partition QOS gpulim" in why[2]["h100"]
    assert eligible_parts(snap, 3) == {"a100", "h100"}
    # GrpTRES counts every user's running GPUs under the QOS
    runner = replace(
        pending(9, ["h100"]), state=JobState.RUNNING, user="other", gpus_alloc={"h100": 3}
    )
    busy = replace(snap, jobs=(*snap.jobs, runner))
    assert "exceed GrpTRES gres/gpu=3" in Problem.build(busy).reasons[3]["h100"]


def test_preemptable_partition_costs_its_penalty() -> None:
    from slurmopt.optimize import schedule as sched
    from slurmopt.optimize.config import OptimizeConfig as Cfg
    from slurmopt.optimize.ranking import rank_new_job

    snap = hetero_cluster([pending(1, ["a100", "h100"])])
    parts = tuple(
        replace(p, preempt_mode="REQUEUE") if p.name == "h100" else p for p in snap.partitions
    )
    # PreemptMode alone: no partition of a higher tier shares its nodes, nothing preempts
    alone = Problem.build(replace(snap, partitions=parts), Cfg(preempt_penalty_s=1800))
    assert not any(alone.preemptable)
    h100 = next(p for p in parts if p.name == "h100")
    prio = replace(h100, name="prio", preempt_mode=None, priority_tier=h100.priority_tier + 1)
    snap = replace(snap, partitions=(*parts, prio))
    prob = Problem.build(snap, Cfg(preempt_penalty_s=1800))
    o = next(i for i, j in enumerate(prob.jobs) if j.job_id == 1)
    idx = {p.name: i for i, p in enumerate(prob.partitions)}
    assert prob.preemptable[idx["h100"]] and not prob.preemptable[idx["prio"]]
    assert sched.contribution(prob, o, idx["h100"], prob.now)[2] == 1800 * prob.weight[o]
    assert sched.contribution(prob, o, idx["a100"], prob.now)[2] == 0.0
    # the ranking (optsub, routing): h100 is faster, but the penalty puts a100 first
    ranked = rank_new_job(prob, 1, ["a100", "h100"])
    by = {c.partition: c for c in ranked.candidates}
    assert by["h100"].end is not None and by["a100"].end is not None
    assert by["h100"].end < by["a100"].end and by["h100"].penalty == 1800
    assert ranked.best is not None and ranked.best.partition == "a100"
    no_pen = Problem.build(snap, Cfg(preempt_penalty_s=0))
    best = rank_new_job(no_pen, 1, ["a100", "h100"]).best
    assert best is not None and best.partition == "h100"
    with pytest.raises(ValueError, match="preempt_penalty_s"):
        Cfg(preempt_penalty_s=-1)
