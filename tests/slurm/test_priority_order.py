"""Queue order from Slurm's real priorities (multifactor with fair share and QOS on the
accounting testbed), not submit order: the Problem that optsub and the controller
schedule with lists pending jobs as Slurm ranks them."""

from __future__ import annotations

import pytest

from slurmopt.clusterspec import ClusterSpec
from slurmopt.optimize.problem import Problem
from slurmopt.slurm.backend import CliBackend
from tests.slurm.conftest import JobTracker, slurm_cmd, wait_for


def test_problem_orders_pending_jobs_by_slurm_priority(
    jobs: JobTracker, cluster_spec: ClusterSpec
) -> None:
    qos = next((q for q in cluster_spec.qos if q.priority > 0), None)
    if qos is None or not cluster_spec.accounting:
        pytest.skip("the spec has no QOS with a priority (or no accounting)")
    common = ("--begin=now+3600", "-t", "5", "-o", "/dev/null", "--wrap", "true")
    first = jobs.submit("--nice=100", *common)  # submitted first, ranked last
    second = jobs.submit(*common)
    third = jobs.submit("-q", qos.name, *common)  # submitted last, ranked first
    ids = [first, second, third]

    def priorities() -> dict[int, int]:
        res = slurm_cmd(["squeue", "-h", "-j", ",".join(map(str, ids)), "-o", "%i %Q"])
        got = {int(a): int(b) for a, b in (ln.split() for ln in res.stdout.splitlines())}
        return got if len(got) == 3 and got[third] > got[second] > got[first] else {}

    slurm = wait_for(priorities, timeout=30)
    snap = CliBackend(timeout=30).snapshot()
    mine = {j.job_id: j for j in snap.jobs if j.job_id in ids}
    assert {i: mine[i].priority for i in ids} == slurm  # the priority Slurm computed
    order = [j.job_id for j in Problem.build(snap).jobs if j.job_id in ids]
    assert order == [third, second, first]  # Slurm's order, not the submit order
