"""The one ranking rule for a new submission: where should this job go?

Used by optsub (:func:`slurmopt.optsub.decide.decide`), the controller's
routing advice for the Lua plugin (:func:`slurmopt.controller.routing.advise`)
and the simulator's ``optsub`` policy (:mod:`slurmopt.sim.optpolicy`), so that
all three rank the same way. Entry point: :func:`rank_new_job`.

**Evaluation.** The job is one of a built
:class:`~slurmopt.optimize.problem.Problem`'s scheduled jobs (optsub's new
submission, a routing probe, a simulated arrival). Every job ahead of it in
Slurm's queue order is list-scheduled once, where it currently is (jobs behind
it cannot delay it, so they are not scheduled); then the job is placed, without
reserving, on each of its eligible partitions: predicted start, runtime at that
partition's speed, completion. One pass over the queue ahead per decision, not
one per partition. A partition none of whose available nodes (with the GPU
type the job would get there) satisfies the job's ``--constraint`` is not
eligible.

**Choice** (:func:`order_candidates`, best first):

* policy ``completion``: earliest completion; ties (to the second) go to
  Slurm's default partition, then to the caller's order (the user's list);
* policy ``start``: earliest start, then earliest completion, then the same ties;
* **preemption**: where the job may be preempted (a partition with its own
  PreemptMode under a higher-tier partition on the same nodes), its start and
  completion count ``preempt_penalty_s`` later (``Candidate.penalty``);
* **free now**: a partition where the job can start now is never passed over
  for a slower partition where it can also start now (at no higher penalty) (the rule Slurm's own
  ``-p a,b`` follows at best; under ``completion`` it holds by construction,
  it is also checked explicitly, against rounding);
* **waiting**: when the chosen partition cannot start the job now, the
  partitions where it would run at least as fast are listed after it
  (:func:`also_acceptable`), so that Slurm starts it in whichever of them
  frees first (predictions of when running jobs end are the least reliable
  part of the picture).

Standard library only (optsub runs it on the submit path).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from slurmopt.model import Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.profile import INF, Profiles
from slurmopt.optimize.schedule import commit, place
from slurmopt.slurm import constraint

if TYPE_CHECKING:
    from slurmopt.optimize.problem import Problem

FREE_NOW_S = 1.0
"""A start at most this long after now counts as "now"."""


class Candidate(NamedTuple):
    """One partition of the allowed set, as the ranking saw it (a NamedTuple: defined on
    optsub's submit path, where a frozen dataclass costs about 0.5 ms per process)."""

    partition: str
    eligible: bool
    reason: str = ""
    start: float | None = None
    runtime: float | None = None
    end: float | None = None
    gpu_type: str | None = None
    rewrite_to: str | None = None
    chosen: bool = False
    penalty: float = 0.0
    """Seconds added to its completion (and start) when ranking: ``preempt_penalty_s``
    where the job may be preempted (:func:`~slurmopt.optimize.eligibility.preemptable`)."""


class Ranking(NamedTuple):
    """:func:`rank_new_job`'s answer."""

    candidates: tuple[Candidate, ...]
    """Every allowed partition in the caller's order, eligible or with the reason why not."""
    ordered: tuple[Candidate, ...]
    """The eligible ones, best first (:func:`order_candidates`)."""

    @property
    def best(self) -> Candidate | None:
        return self.ordered[0] if self.ordered else None


def rank_new_job(
    problem: Problem,
    job_id: int,
    allowed: Sequence[str],
    *,
    policy: str = "completion",
    ahead: Profiles | None = None,
) -> Ranking:
    """Rank job ``job_id`` of ``problem`` (a built Problem) over the partitions ``allowed``.

    ``allowed`` is also the tie order (the user's order). Partitions the problem
    found ineligible keep its reason; a job the problem could not place at all
    gets its reason on every partition. ``ahead``: the profiles with the jobs
    ahead of ``job_id`` already list-scheduled (:func:`schedule_ahead`), so
    that they are not scheduled again (read only).
    """
    cands = _evaluate(problem, job_id, allowed, ahead)
    default = problem.snapshot.default_partition
    ordered = order_candidates(
        cands,
        policy=policy,
        default=default.name if default else None,
        order=allowed,
        now=problem.now,
    )
    return Ranking(tuple(cands), tuple(ordered))


def order_candidates(
    cands: Sequence[Candidate],
    *,
    policy: str,
    default: str | None,
    order: Sequence[str],
    now: float,
) -> list[Candidate]:
    """The eligible candidates, best first, by the rule in the module docstring."""
    pos = {p: i for i, p in enumerate(order)}
    ok = [c for c in cands if c.eligible and c.end is not None and c.start is not None]

    def key(c: Candidate) -> tuple[float, ...]:
        assert c.start is not None and c.end is not None
        ties = (float(c.partition != default), float(pos.get(c.partition, len(pos))))
        if policy == "start":
            return (round(c.start + c.penalty), round(c.end + c.penalty), *ties)
        return (round(c.end + c.penalty), *ties)

    ok.sort(key=key)
    if ok and _free_now(ok[0], now):
        fastest = min(
            (c for c in ok if _free_now(c, now) and c.penalty <= ok[0].penalty),
            key=lambda c: c.runtime or 0.0,
            default=ok[0],
        )
        if (fastest.runtime or 0.0) < (ok[0].runtime or 0.0):
            ok.remove(fastest)
            ok.insert(0, fastest)
    return ok


def also_acceptable(cands: Sequence[Candidate], best: Candidate, now: float) -> list[str]:
    """Partitions to list after ``best`` when the job cannot start now (``-p best,x,y``).

    Slurm starts a job listing several partitions in the first one that can run
    it. A job that must wait for ``best`` may as well start on any eligible
    partition where it runs at least as fast (and with the same GPU request),
    should that one free up first: its completion can then only be earlier
    than on ``best``, whatever the predictions got wrong. Ordered fastest first.
    Empty when ``best`` is free now (it starts there at once).
    """
    if best.start is None or best.runtime is None or _free_now(best, now):
        return []
    alts = [
        c
        for c in cands
        if c.eligible
        and c.partition != best.partition
        and c.runtime is not None
        and c.runtime <= best.runtime
        and c.rewrite_to == best.rewrite_to
    ]
    alts.sort(key=lambda c: c.runtime or 0.0)
    return [c.partition for c in alts]


def _free_now(c: Candidate, now: float) -> bool:
    return c.start is not None and c.start <= now + FREE_NOW_S


def _evaluate(
    problem: Problem, job_id: int, allowed: Sequence[str], ahead: Profiles | None = None
) -> list[Candidate]:
    pos = next((o for o, j in enumerate(problem.jobs) if j.job_id == job_id), None)
    reasons: dict[str, str] = dict(problem.reasons.get(job_id, {}))
    if pos is None:
        why = problem.unplaced.get(job_id, "not placeable")
        return [Candidate(p, False, reasons.get(p, why)) for p in allowed]
    opts = problem.options[pos]
    names = [p.name for p in problem.partitions]
    if ahead is None:
        ahead = _ahead(problem, pos, {problem.comp_of_part[pi] for pi in opts})
    prof = ahead
    job = problem.jobs[pos]
    constraint = job.request.constraint
    out: dict[str, Candidate] = {}
    for pi in sorted(opts):
        opt = opts[pi]
        name = names[pi]
        if constraint and not constraint_ok(constraint, problem.snapshot, name, opt.gpu_type):
            out[name] = Candidate(
                name,
                False,
                f"no node satisfies --constraint={constraint}"
                + (f" with {opt.gpu_type} GPUs" if opt.gpu_type else ""),
            )
            continue
        s, _ = place(prof, opt, problem.t0[pos])
        if s >= INF:
            out[name] = Candidate(name, False, "never fits (capacity)")
            continue
        pen = problem.config.preempt_penalty_s if problem.preemptable[pi] else 0.0
        out[name] = Candidate(
            name, True, "", s, opt.runtime, s + opt.runtime, opt.gpu_type, opt.rewrite, False, pen
        )
    return [out.get(p) or Candidate(p, False, reasons.get(p, "not eligible")) for p in allowed]


def _ahead(problem: Problem, pos: int, comps: set[int] | None = None) -> Profiles:
    """The profiles after list-scheduling the jobs before ``pos`` where they are now.

    Only the components ``comps`` (default: all) are copied and scheduled; with
    no job to schedule there, the problem's base itself (read only).
    """
    return schedule_ahead(problem, pos, comps)[0]


def schedule_ahead(
    problem: Problem, pos: int, comps: set[int] | None = None
) -> tuple[Profiles, float]:
    """:func:`_ahead` and the earliest start it gave a job (``inf``: none scheduled).

    The profiles are a copy the caller may change when some job was scheduled.
    """
    if comps is None:
        comps = set(range(len(problem.comp_nodes)))
    parts = problem.parts_of(problem.current_genes())
    comp_of = problem.comp_of_part
    todo = [o for o in range(pos) if comp_of[parts[o]] in comps]
    if not todo:
        return problem.base, INF
    nodes = sorted(n for c in comps for n in problem.comp_nodes[c])
    prof = problem.base.copy(nodes)
    first = INF
    lbs: dict[tuple[int, int, int, float], dict[int, float]] = {}  # only reservations added
    for o in todo:
        opt = problem.options[o][parts[o]]
        s, ns = place(prof, opt, problem.t0[o], lbs=lbs)
        commit(prof, opt, s, ns)
        first = min(first, s)
    return prof, first


# -- the queue digest (the controller schedules the queue once; optsub reuses it) --------

QUEUE_PROBE_ID = -3
"""Job id of the probe that marks "behind every pending job" in :func:`queue_digest`."""


def queue_digest(
    snap: Snapshot, cfg: OptimizeConfig, runtimes: Mapping[int, float]
) -> dict[str, Any]:
    """The queue as a new submission sees it, for the state cache (JSON-able).

    Every pending job that could delay a new submission queued behind all of
    them is list-scheduled where it is now, in Slurm's queue order (exactly the
    jobs :func:`rank_new_job` would schedule ahead of such a job); the result is
    each node's free CPUs, memory and GPUs over time. optsub then ranks on these
    profiles without reading or scheduling the queue (:func:`digest_base`): one
    pass over the queue per controller cycle instead of one per submission.

    ``{"now": t, "pending": [job ids], "nodes": {name: [times, cpu, mem, gpu]}}``
    """
    from slurmopt.model import Job, JobRequest, JobState
    from slurmopt.optimize.problem import Problem

    probe = Job(
        job_id=QUEUE_PROBE_ID,
        name="queue-probe",
        user="",
        state=JobState.PENDING,
        partitions=(),
        request=JobRequest(time_limit_s=1),
        priority=-1,
        submit_time=2**31,
    )
    everywhere = [p.name for p in snap.partitions]
    problem = Problem.build(
        snap, cfg, jobs=[probe], runtimes=runtimes, allowed={QUEUE_PROBE_ID: everywhere}
    )
    pos = next((o for o, j in enumerate(problem.jobs) if j.job_id == QUEUE_PROBE_ID), None)
    ahead = problem.jobs[:pos] if pos is not None else problem.jobs
    prof = _ahead(problem, len(ahead))
    names = [n.name for n in snap.nodes]
    return {
        "now": problem.now,
        "pending": sorted(j.job_id for j in snap.jobs if j.pending),
        "scheduled": len(ahead),
        "nodes": {
            names[n]: [prof.times[n], prof.cpu[n], prof.mem[n], prof.gpu[n]]
            for n in range(len(names))
            if prof.times[n]
        },
    }


def digest_base(
    digest: Mapping[str, Any], old: Profiles, new: Profiles, names: Sequence[str]
) -> Profiles | None:
    """The digest's profiles, corrected by what changed since: ``digest + new - old``.

    ``old`` and ``new`` are the running jobs' profiles (``schedule.base_profiles``)
    before and after the live refresh, over the nodes ``names`` (the digest's
    node set must match; None when it does not, or when the digest is malformed).
    """
    nodes = digest.get("nodes")
    if not isinstance(nodes, dict) or set(nodes) != set(names):
        return None
    times, cpu, mem, gpu = [], [], [], []
    try:
        for n, name in enumerate(names):
            dt = [float(x) for x in nodes[name][0]]
            dc, dm, dg = ([int(x) for x in nodes[name][k]] for k in (1, 2, 3))
            same = (
                old.times[n] == new.times[n]
                and old.cpu[n] == new.cpu[n]
                and old.mem[n] == new.mem[n]
                and old.gpu[n] == new.gpu[n]
            )
            t, c, m, g = (dt, dc, dm, dg) if same else _sum3([dt, dc, dm, dg], old, new, n)
            times.append(t)
            cpu.append(c)
            mem.append(m)
            gpu.append(g)
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return Profiles(times, cpu, mem, gpu, new.cap_cpu, new.cap_mem, new.cap_gpu)


def use_digest(
    problem: Problem,
    digest: Mapping[str, Any],
    before: Snapshot,
    runtimes: Mapping[int, float] | None = None,
) -> bool:
    """Make the controller's queue digest the problem's base (True when it could).

    ``before`` is the cached snapshot the digest came with (before the live
    refresh); the problem's own base (its running jobs, after the refresh) and
    ``before``'s differ by what ended or started since: that difference is
    applied to the digest (:func:`digest_base`). The problem must hold no
    pending job of the digest (the cache leaves them out).
    """
    from slurmopt.optimize.schedule import base_profiles

    old = base_profiles(before, problem.config, problem.now, runtimes or {})
    names = [n.name for n in problem.snapshot.nodes]
    if [n.name for n in before.nodes] != names:
        return False
    base = digest_base(digest, old, problem.base, names)
    if base is None:
        return False
    problem.base = base
    return True


def _sum3(
    d: list[list[Any]], old: Profiles, new: Profiles, n: int
) -> tuple[list[float], list[int], list[int], list[int]]:
    """Node ``n``: the step function ``d + new - old`` (from the latest first breakpoint)."""
    start = max(d[0][0], old.times[n][0], new.times[n][0])
    pts = sorted(
        {start, *(t for src in (d[0], old.times[n], new.times[n]) for t in src if t > start)}
    )

    def at(ts: Sequence[float], vals: Sequence[int], t: float) -> int:
        i = bisect_right(ts, t) - 1
        return int(vals[max(0, i)])

    out_c, out_m, out_g = [], [], []
    for t in pts:
        out_c.append(
            at(d[0], d[1], t) + at(new.times[n], new.cpu[n], t) - at(old.times[n], old.cpu[n], t)
        )
        out_m.append(
            at(d[0], d[2], t) + at(new.times[n], new.mem[n], t) - at(old.times[n], old.mem[n], t)
        )
        out_g.append(
            at(d[0], d[3], t) + at(new.times[n], new.gpu[n], t) - at(old.times[n], old.gpu[n], t)
        )
    return pts, out_c, out_m, out_g


def constraint_ok(expr: str, snap: Snapshot, partition: str, gpu_type: str | None) -> bool:
    """Whether an available node of ``partition`` (with ``gpu_type`` GPUs) satisfies ``expr``
    (:mod:`slurmopt.slurm.constraint`; an expression it cannot read does not filter)."""
    want = constraint.parse(expr)
    if want is None:
        return True  # not readable here: Slurm decides
    try:
        part = snap.partition(partition)
    except KeyError:
        return False
    members = set(part.nodes)
    for node in snap.nodes:
        if node.name not in members or not node.available:
            continue
        if gpu_type and node.gpus.get(gpu_type, 0) <= 0:
            continue
        if want.matches(node.features, node.active_features):
            return True
    return False
