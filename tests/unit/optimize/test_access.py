"""Whom Slurm checks a job as (defaults from accounting, every group of the user), and
the job's own QOS limits next to the partition QOS."""

from __future__ import annotations

from dataclasses import replace

from slurmopt.model import Association, QosLimits
from slurmopt.optimize.access import AccessIndex, Identity, unix_groups
from slurmopt.optimize.eligibility import QosUse, _access_reason, qos_reason
from slurmopt.optimize.problem import Problem
from slurmopt.slurm.accounting import parse_associations, parse_qos
from tests.unit.optimize.test_problem_builders import hetero_cluster, pending, running

ASSOC = """alice|ml|c1|ml||high|high,normal
alice|ml|c1|research|||normal
alice|ml|c1|chem|||high,normal
alice|ml|c1|ml|a100|normal|normal
alice|ml|c2|other|||normal
bob|research|c1|research||||
"""


def index() -> AccessIndex:
    return AccessIndex(parse_associations(ASSOC, "c1"), groups_of=lambda u: None)


def test_parse_associations_keeps_the_cluster_and_the_default_account() -> None:
    got = parse_associations(ASSOC, "c1")
    assert len(got) == 5  # c2's is another cluster's
    first = got[0]
    assert (first.user, first.account, first.default_account) == ("alice", "ml", "ml")
    assert (first.default_qos, first.qos, first.partition) == ("high", ("high", "normal"), None)
    assert got[3].partition == "a100"


def test_a_job_without_account_or_qos_gets_the_users_defaults() -> None:
    who = index().identity(pending(1, ["a100"]))
    assert (who.account, who.account_default) == ("ml", True)
    assert (who.qos, who.qos_default) == ("high", True)  # the association's DefaultQOS


def test_default_qos_without_defaultqos_follows_slurm() -> None:
    idx = index()
    # only one QOS allowed: that one; several and no default: "normal"
    one = idx.identity(pending(1, ["a100"], account="research"))
    assert (one.account, one.account_default, one.qos) == ("research", False, "normal")
    several = idx.identity(pending(1, ["a100"], account="chem"))
    assert several.qos == "normal"
    # the job's own QOS wins; an unknown user keeps unknowns
    own = idx.identity(replace(pending(1, ["a100"]), qos="low"))
    assert (own.qos, own.qos_default) == ("low", False)
    stranger = idx.identity(replace(pending(1, ["a100"]), user="carol"))
    assert (stranger.account, stranger.qos) == (None, None)


def test_eligibility_uses_the_default_account_and_says_so() -> None:
    snap = hetero_cluster([pending(1, ["a100", "h100"])])
    parts = tuple(
        replace(p, allow_accounts=("research",)) if p.name == "h100" else p for p in snap.partitions
    )
    assoc = parse_associations(ASSOC, "c1")
    why = Problem.build(replace(snap, partitions=parts, associations=assoc)).reasons[1]
    assert why["h100"] == ("account ml not in AllowAccounts=research (the user's default account)")
    # allowed through the default: eligible
    parts = tuple(
        replace(p, allow_accounts=("ml",), allow_qos=("high",)) if p.name == "h100" else p
        for p in snap.partitions
    )
    prob = Problem.build(replace(snap, partitions=parts, associations=assoc))
    assert "h100" not in prob.reasons.get(1, {})


def test_allow_groups_takes_every_group_of_the_user() -> None:
    job = replace(pending(1, ["a100", "h100"]), group="alice")
    part = replace(hetero_cluster([job]).partition("h100"), allow_groups=("gpuusers",))
    no = Identity("ml", "normal", frozenset({"alice"}))
    assert _access_reason(job, part, no) == "group alice not in AllowGroups=gpuusers"
    several = Identity("ml", "normal", frozenset({"alice", "staff"}))
    assert _access_reason(job, part, several) == (
        "no group of user alice (alice,staff) in AllowGroups=gpuusers"
    )
    member = Identity("ml", "normal", frozenset({"alice", "gpuusers"}))
    assert _access_reason(job, part, member) is None
    idx = AccessIndex((), groups_of=lambda u: frozenset({"gpuusers"}))
    assert idx.identity(job).groups == {"alice", "gpuusers"}


def test_unix_groups_of_root_and_of_nobody_known() -> None:
    assert unix_groups("root") is not None and "root" in (unix_groups("root") or ())
    assert unix_groups("no-such-user-slurmopt") is None


QOS = (
    "normal|||||\n"
    "lim|00:10:00|gres/gpu=2|gres/gpu=8|gres/gpu=1|\n"
    "part|01:00:00||||\n"
    "over|00:05:00||||OverPartQOS,DenyOnLimit\n"
)


def test_parse_qos_reads_per_job_gpus_and_flags() -> None:
    q = {x.name: x for x in parse_qos(QOS)}
    assert q["lim"] == QosLimits("lim", 600, 2, 8, 1, False)
    assert q["over"].over_part_qos and q["over"].max_wall_s == 300
    # the four-column form (older recordings) still reads
    assert parse_qos("x|00:01:00||\n") == (QosLimits("x", 60),)


def test_the_jobs_own_qos_limits_apply_and_the_partition_qos_wins() -> None:
    limits = {x.name: x for x in parse_qos(QOS)}
    snap = hetero_cluster([])
    a100 = snap.partition("a100")
    long = replace(pending(1, ["a100"], limit=1800), qos="lim")
    assert qos_reason(long, a100, limits, None) == (
        "time limit 00:30:00 exceeds MaxWall 00:10:00 of the job's QOS lim"
    )
    # the partition QOS sets MaxWall: its 1 h wins over the job QOS's 10 min
    with_part = replace(a100, qos="part")
    assert qos_reason(long, with_part, limits, None) is None
    # ... unless the job's QOS has OverPartQOS
    over = replace(long, qos="over")
    assert "of the job's QOS over" in (qos_reason(over, with_part, limits, None) or "")
    # MaxTRESPerJob, then MaxTRESPerUser with what the user's running jobs hold
    two = replace(pending(2, ["a100"], gpus=2, limit=60), qos="lim")
    assert qos_reason(two, a100, limits, None) == (
        "2 GPU(s) exceed MaxTRESPerJob gres/gpu=1 of the job's QOS lim"
    )
    one = replace(pending(3, ["a100"], gpus=1, limit=60), qos="lim")
    held = replace(running(9, "v100", ["v1"], gpus=2, gpu_type="v100"), qos="lim", user="alice")
    use = QosUse.of([held], snap.partitions)
    assert use.per_user[("lim", held.user)] == 2
    assert qos_reason(one, a100, limits, use) == (
        "1 GPU(s) + 2 held by alice exceed MaxTRESPerUser gres/gpu=2 of the job's QOS lim"
    )
    # the QOS Slurm will use (a default) is passed in
    plain = pending(4, ["a100"], limit=1800)
    assert qos_reason(plain, a100, limits, None) is None
    assert "lim" in (qos_reason(plain, a100, limits, None, "lim") or "")


def test_problem_applies_the_default_qos_limits() -> None:
    job = pending(1, ["a100", "h100"], limit=1800)
    snap = hetero_cluster([job])
    assoc = (Association("alice", "ml", "ml", "lim", ("lim", "normal")),)
    snap = replace(snap, qos=parse_qos(QOS), associations=assoc)
    why = Problem.build(snap).reasons[1]
    assert (
        why["a100"]
        == why["h100"]
        == ("time limit 00:30:00 exceeds MaxWall 00:10:00 of the job's QOS lim")
    )


def test_hidden_partitions_only_when_named() -> None:
    from slurmopt.optimize.eligibility import allowed_set
    from slurmopt.slurm.parse_partitions import apply_oneliner, parse_partitions_text

    (p,) = parse_partitions_text("PartitionName=admin Hidden=YES State=UP Nodes=n1\n")
    assert p.hidden
    # 24.11's JSON has no flags: Hidden comes from the oneliner
    (q,) = apply_oneliner((replace(p, hidden=False),), "PartitionName=admin Hidden=YES\n")
    assert q.hidden
    snap = hetero_cluster([replace(pending(1, []), partitions=())])
    parts = tuple(replace(x, hidden=x.name == "h100") for x in snap.partitions)
    job = snap.jobs[0]
    assert "h100" not in allowed_set(job, parts, None)
    assert "h100" in allowed_set(replace(job, partitions=("h100",)), parts, None)
