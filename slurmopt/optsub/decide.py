"""optsub's decision: where a new submission should go, and the argv that sends it there.

The job is ranked over its allowed set with the controller's own
:class:`~slurmopt.optimize.problem.Problem` (one new job against the current
state, placed after every pending job in priority order) by
:mod:`slurmopt.optimize.ranking`, the one ranking rule that the controller's
routing advice and the simulator's ``optsub`` policy also call: for each
eligible partition, the predicted start, the runtime at that partition's speed
and the completion. The chosen partition is the earliest completion (policy
``completion``) or the earliest start (policy ``start``); ties go to Slurm's
default partition, then to the partition the user listed first; a partition
where the job can start now is never passed over for a slower one where it can
also start now.

Rules (docs/optsub.md has the user-facing version):

* ``-p X`` (one partition) is kept unless ``respect_single_partition`` is off;
  ``-p a,b,c`` is the allowed set; no ``-p``: every partition (``eligible``),
  the site's list (``listed``) or nothing is changed (``keep``);
* a typed GPU request (``--gres=gpu:a100:1``, ``--gpus=a100:1``, ...) is
  *pinned* (only partitions with that type are eligible and the type is never
  rewritten) unless the user listed two or more partitions, or the site set
  ``rewrite_typed_gpu``. A request naming several GPU types is always pinned;
* ``--constraint`` is honoured: a partition (and GPU type) is eligible only if
  one of its nodes with that GPU type has features satisfying the constraint;
* heterogeneous jobs, ``-M``/``--clusters``, ``--nodelist``, ``--reservation``
  and arguments this parser cannot read with certainty are submitted as written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any, NamedTuple

from slurmopt.lazylog import get_logger
from slurmopt.model import Job, JobState, Snapshot
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.ranking import (
    Candidate,
    also_acceptable,
    order_candidates,
    rank_new_job,
    use_digest,
)
from slurmopt.optsub.config import OptsubConfig
from slurmopt.optsub.request import GPU_OPTIONS, Submission, parse_begin, retype, submission
from slurmopt.slurm.fields import format_duration
from slurmopt.slurm.sbatch_args import ParsedArgs, rewrite

log = get_logger(__name__)

NEW_JOB_ID = -1
"""Job id of the new submission inside the problem (it has no id yet)."""


class Decision(NamedTuple):
    """What optsub decided, and why.

    A NamedTuple, as :class:`Placing` and the ranking's records: they are defined on
    optsub's submit path, where a frozen dataclass costs about 0.5 ms per process
    (issue 16). Its dicts are never changed after construction (the defaults are
    shared); :meth:`to_dict` copies them.
    """

    action: str
    """``rewrite`` (argv changed), ``keep`` (ranked, nothing to change) or ``passthrough``."""
    argv: tuple[str, ...]
    original: tuple[str, ...]
    reason: str
    policy: str = "completion"
    partition: str | None = None
    gpu_type: str | None = None
    allowed: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    state_source: str = ""
    now: float = 0.0
    changes: dict[str, str] = {}
    pinned: bool = True
    """Whether the GPU type must stay as it is when the controller re-places the job."""
    cluster: str = ""
    request: dict[str, Any] = {}
    """The submitted request as placed (GPU type rewritten), so that the next optsub
    can count this job before the controller's cache shows it (:mod:`.state`)."""
    held: bool = False
    """Submitted held (``--hold``): it takes no resources until released."""
    time_limits: dict[str, int | None] = {}
    """Without ``-t``: the time limit the job gets in each allowed partition (its
    DefaultTime, else MaxTime; None: unlimited). Empty with ``-t``."""
    time_limit_basis: str = ""
    """Without ``-t``: the limit the job was ranked with, as if given with ``-t``
    (:func:`reference_limit`), e.g. ``a100 04:00:00 (first partition listed)``."""

    def to_dict(self) -> dict[str, Any]:
        """A new plain dict (what ``dataclasses.asdict`` gave when this was a dataclass)."""
        d = self._asdict()
        d["candidates"] = [c._asdict() for c in self.candidates]
        for key in ("changes", "request", "time_limits"):
            d[key] = dict(d[key])
        return d


def passthrough(parsed: ParsedArgs, reason: str, **kw: Any) -> Decision:
    """A decision that submits the arguments as written."""
    return Decision("passthrough", parsed.argv, parsed.argv, reason, **kw)


def scope(parsed: ParsedArgs, cfg: OptsubConfig) -> tuple[Submission | None, str]:
    """The submission if optsub may place it, else None and why not (pure, no state needed).

    A value optsub cannot read (``-t abc``, ``--mem=1.5G``, ``--gpus=a100:x``,
    but also ``-t 2-`` that sbatch accepts) is sbatch's to judge: the job is
    submitted as written, without a warning, so that sbatch's own message (or
    none) is all the user sees.
    """
    why = _out_of_scope(parsed, cfg)
    if why:
        return None, why
    try:
        sub = submission(parsed)
    except ValueError as exc:
        return None, f"sbatch judges this value ({exc}): submitted as written"
    why = _submitted_as_written(sub, cfg)
    return (None, why) if why else (sub, "")


def _out_of_scope(parsed: ParsedArgs, cfg: OptsubConfig) -> str:
    """Why optsub leaves these arguments alone before reading them ("" if it does not)."""
    rules = (
        (cfg.policy == "keep" or not cfg.enabled, "policy keep: nothing is changed"),
        (bool(parsed.ambiguous), f"arguments not fully understood ({parsed.ambiguous})"),
        (
            bool(parsed.cmdline.errors),
            f"sbatch will judge these arguments ({'; '.join(parsed.cmdline.errors)})",
        ),
        (parsed.hetjob, "heterogeneous job: submitted as written"),
        (
            bool(parsed.foreign_directives) and not parsed.first.has("ignore-pbs"),
            "#PBS/#BSUB directives (sbatch translates them): submitted as written",
        ),
    )
    return next((why for cond, why in rules if cond), "")


def _submitted_as_written(sub: Submission, cfg: OptsubConfig) -> str:
    """Why this submission goes as written ("" if optsub places it)."""
    rules = (
        (bool(sub.clusters), "-M/--clusters: submitted as written"),
        (bool(sub.nodelist or sub.reservation), "--nodelist/--reservation: submitted as written"),
        (
            len(sub.gpu_types) > 1,
            f"several GPU types ({','.join(sorted(sub.gpu_types))}): submitted as written",
        ),
        (
            sub.partitions is None and cfg.no_partition == "keep",
            "no -p and no_partition = keep: Slurm's default partition applies",
        ),
    )
    return next((why for cond, why in rules if cond), "")


def is_single(sub: Submission, cfg: OptsubConfig) -> bool:
    """True when the user's single ``-p X`` is kept as written."""
    return sub.partitions is not None and len(sub.partitions) == 1 and cfg.respect_single_partition


def allowed_partitions(sub: Submission, snap: Snapshot, cfg: OptsubConfig) -> tuple[str, ...]:
    """The user's allowed set, in the user's order.

    A single ``-p X`` with ``respect_single_partition`` off becomes a preference:
    X first, then the partitions a job without ``-p`` could use.
    """
    if sub.partitions is not None and (len(sub.partitions) > 1 or cfg.respect_single_partition):
        return sub.partitions
    first = sub.partitions or ()
    rest = (
        cfg.partitions
        if cfg.no_partition == "listed"
        else [p.name for p in snap.partitions if not p.hidden]  # Hidden=YES: only when named
    )
    return tuple(first) + tuple(p for p in rest if p not in first)


def is_pinned(sub: Submission, cfg: OptsubConfig) -> bool:
    """True when a typed GPU request must keep its type (see the module docstring)."""
    if not sub.gpu_types:
        return False
    if len(sub.gpu_types) > 1:
        return True
    if sub.partitions is not None and len(sub.partitions) >= 2:
        return False
    return not cfg.rewrite_typed_gpu


def new_job(sub: Submission, user: str, now: float) -> Job:
    """The submission as a pending :class:`~slurmopt.model.Job` (lowest priority, submitted now)."""
    return Job(
        job_id=NEW_JOB_ID,
        name="optsub",
        user=user,
        state=JobState.PENDING,
        partitions=sub.partitions or (),
        request=sub.request,
        account=sub.account,
        qos=sub.qos,
        priority=0,
        submit_time=int(now),
        eligible_time=_begin(sub, now),
    )


def _begin(sub: Submission, now: float) -> int | None:
    t = parse_begin(sub.begin, now) if sub.begin else None
    return None if t is None else int(t)


class Placing(NamedTuple):
    """A submission optsub places: what the user asked, within which set, how free it is."""

    parsed: ParsedArgs
    sub: Submission
    allowed: tuple[str, ...]
    single: bool
    """The user's single ``-p X`` is kept: only the GPU type could change (it cannot: pinned)."""
    pinned: bool
    job: Job
    """The submission as a pending job of the problem (:func:`new_job`)."""


def decide(  # noqa: PLR0913  the inputs of one decision, keyword-only after the four positional ones; its steps are the functions below
    parsed: ParsedArgs,
    snap: Snapshot,
    cfg: OptsubConfig,
    opt_cfg: OptimizeConfig,
    *,
    now: float,
    user: str,
    state_source: str = "",
    runtimes: Mapping[int, float] | None = None,
    queue: tuple[Mapping[str, Any], Snapshot] | None = None,
) -> Decision:
    """Rank the submission over its allowed set and build the argv to submit.

    ``runtimes`` are predicted runtimes of the snapshot's jobs (the controller's,
    from the state cache); without one a job is expected to run to its time limit.
    ``queue``: the controller's queue digest and the cached snapshot it came with
    (:func:`slurmopt.optimize.ranking.use_digest`): the pending queue is then
    taken as the controller scheduled it instead of being scheduled here.

    The steps: :func:`scope` (may optsub place it at all), :func:`placing` (the
    allowed set, pinned or not; None when the user named a partition Slurm
    does not know), :func:`candidates` (every allowed partition ranked),
    :func:`choose` (the best eligible one) and :func:`changes_for` (the argv edits).

    Raises:
        Exception: whatever the optimizer raises (the caller fails open).
    """
    sub, why = scope(parsed, cfg)
    pl = placing(parsed, sub, snap, cfg, new_job(sub, user, now)) if sub is not None else None
    if pl is None:
        missing = ",".join(_unknown_partitions(sub, snap)) if sub is not None else ""
        why = why or f"unknown partition {missing}: sbatch decides"
        return passthrough(parsed, why, policy=cfg.policy, state_source=state_source, now=now)
    cands = candidates(pl, snap, opt_cfg, now, runtimes, queue)
    common: dict[str, Any] = {
        "policy": cfg.policy,
        "allowed": pl.allowed,
        "state_source": state_source,
        "now": now,
        "pinned": pl.pinned,
        "cluster": snap.cluster_name,
        **_limit_fields(pl, snap),
    }
    best = choose(cands, pl.allowed, snap, cfg.policy, now=now)
    if best is None:
        why = "no allowed partition can run this job; Slurm decides"
        return passthrough(parsed, why, candidates=tuple(cands), **common)
    also = [] if pl.single else also_acceptable(cands, best, now)
    changes = changes_for(pl, best, snap, also)
    retyped = best.rewrite_to if best.rewrite_to and not pl.pinned else None
    return Decision(
        "rewrite" if changes else "keep",
        tuple(rewrite(parsed, changes)) if changes else parsed.argv,
        parsed.argv,
        _why(best, [c for c in cands if c.eligible and c.end is not None], cfg.policy)
        + (f"; may also start in {','.join(also)} if one frees up first" if also else ""),
        partition=best.partition,
        gpu_type=best.rewrite_to or best.gpu_type,
        candidates=tuple(_mark(c, best.partition) for c in cands),
        changes=changes,
        request=_placed_request(pl.sub, retyped),
        held=pl.sub.hold,
        **common,
    )


def placing(
    parsed: ParsedArgs, sub: Submission, snap: Snapshot, cfg: OptsubConfig, job: Job
) -> Placing | None:
    """The allowed set and how free the job is (None: a partition Slurm does not know)."""
    if _unknown_partitions(sub, snap):
        return None
    single = is_single(sub, cfg)
    return Placing(
        parsed=parsed,
        sub=sub,
        allowed=allowed_partitions(sub, snap, cfg),
        single=single,
        pinned=is_pinned(sub, cfg) or single,
        job=job,
    )


def _unknown_partitions(sub: Submission, snap: Snapshot) -> list[str]:
    known = {p.name for p in snap.partitions}
    return [p for p in sub.partitions or () if p not in known]


def candidates(
    pl: Placing,
    snap: Snapshot,
    opt_cfg: OptimizeConfig,
    now: float,
    runtimes: Mapping[int, float] | None = None,
    queue: tuple[Mapping[str, Any], Snapshot] | None = None,
) -> list[Candidate]:
    """Every allowed partition, eligible or why not, with the new job's predicted times there.

    The job is placed with the controller's own problem (imported here: the
    optimizer is not on the import path of a passthrough), on the queue digest's
    profiles when ``queue`` is given (see :func:`decide`). Without ``-t`` it is
    ranked as if it had the limit of :func:`reference_limit` (the time it may
    need), and a partition whose own limit for it (:func:`implicit_limits`) is
    shorter than its expected runtime there is not eligible.
    """
    from slurmopt.optimize.problem import Problem

    limits = implicit_limits(pl, snap)
    job = pl.job
    ref = reference_limit(pl, limits, snap)
    if ref is not None and ref[1] is not None:
        job = replace(job, request=replace(job.request, time_limit_s=ref[1]))
    problem = Problem.build(
        snap,
        opt_cfg,
        jobs=[job],
        now=now,
        allowed={NEW_JOB_ID: pl.allowed},
        runtimes=runtimes,
        rewritable=() if pl.pinned else (NEW_JOB_ID,),
        pinned=(NEW_JOB_ID,) if pl.pinned else (),
    )
    if queue is not None:
        use_digest(problem, queue[0], queue[1], runtimes)
    cands = rank_new_job(problem, NEW_JOB_ID, pl.allowed).candidates
    return [_within_own_limit(c, limits) for c in cands]


def _within_own_limit(c: Candidate, limits: Mapping[str, int | None]) -> Candidate:
    own = limits.get(c.partition)
    if not c.eligible or own is None or c.runtime is None or c.runtime <= own * (1 + 1e-9):
        return c
    why = (
        f"without -t the job gets {format_duration(own)} here (DefaultTime), less than its"
        f" expected runtime {format_duration(c.runtime)}"
    )
    return Candidate(c.partition, False, why)


def reference_limit(
    pl: Placing, limits: Mapping[str, int | None], snap: Snapshot
) -> tuple[str, int | None] | None:
    """Without ``-t``: the partition whose limit the job is taken to need, and that limit.

    The first partition the user listed (Slurm tries them in that order, and its
    DefaultTime is the limit the user can expect); without ``-p``, the longest
    limit among the partitions it may use (with GPU nodes, for a GPU job: a job is
    never moved where it would be stopped sooner unless that partition's speed
    makes up for it). None with ``-t``.
    """
    if not limits:
        return None
    if pl.sub.partitions:
        first = pl.sub.partitions[0]
        return (first, limits.get(first))
    usable = {p: v for p, v in limits.items() if p in _gpu_capable(pl, snap)} or dict(limits)
    unlimited = [p for p, v in usable.items() if v is None]
    if unlimited:
        return (unlimited[0], None)
    best = max(usable, key=lambda p: usable[p] or 0)
    return (best, usable[best])


def _gpu_capable(pl: Placing, snap: Snapshot) -> set[str]:
    """The allowed partitions with GPU nodes (all of them for a job without GPUs)."""
    if not pl.job.request.wants_gpus:
        return set(pl.allowed)
    with_gpus = {n.name for n in snap.nodes if any(v > 0 for v in n.gpus.values())}
    return {p.name for p in snap.partitions if p.name in pl.allowed and with_gpus & set(p.nodes)}


def _limit_fields(pl: Placing, snap: Snapshot) -> dict[str, Any]:
    limits = implicit_limits(pl, snap)
    ref = reference_limit(pl, limits, snap)
    if ref is None:
        return {}
    basis = "first partition listed" if pl.sub.partitions else "longest limit allowed"
    value = "UNLIMITED" if ref[1] is None else format_duration(ref[1])
    return {"time_limits": limits, "time_limit_basis": f"{ref[0]} {value} ({basis})"}


def implicit_limits(pl: Placing, snap: Snapshot) -> dict[str, int | None]:
    """Without ``-t``: the time limit Slurm gives the job in each allowed partition.

    Slurm sets a job submitted without ``-t`` to the partition's DefaultTime, or
    its MaxTime when it has none (None: unlimited). Empty when the user gave a limit.
    """
    if pl.job.request.time_limit_s is not None:
        return {}
    known = {p.name: p for p in snap.partitions}
    return {p: (known[p].default_time_s or known[p].max_time_s) for p in pl.allowed if p in known}


def choose(
    cands: Sequence[Candidate],
    allowed: Sequence[str],
    snap: Snapshot,
    policy: str,
    *,
    now: float | None = None,
) -> Candidate | None:
    """The best eligible candidate (None: none is eligible), by the one ranking rule
    (:func:`slurmopt.optimize.ranking.order_candidates`).

    Earliest completion (or start, then completion, for policy ``start``), to the
    second; ties go to Slurm's default partition, then to the user's order; a
    partition free ``now`` (default: the snapshot's time) is never passed over
    for a slower one also free now.
    """
    default = snap.default_partition.name if snap.default_partition else None
    ordered = order_candidates(
        cands,
        policy=policy,
        default=default,
        order=allowed,
        now=float(snap.taken_at) if now is None else now,
    )
    return ordered[0] if ordered else None


def changes_for(
    pl: Placing, best: Candidate, snap: Snapshot, also: Sequence[str] = ()
) -> dict[str, str]:
    """The option values to rewrite so that the job goes to ``best`` (empty: none).

    The partition (``best``, then the partitions in ``also``:
    :func:`slurmopt.optimize.ranking.also_acceptable`), unless the user's single
    ``-p`` is kept or the job goes to Slurm's default partition without a
    ``-p``; the GPU type of each typed GPU option, unless pinned.
    """
    changes: dict[str, str] = {}
    if not pl.single:
        cur = pl.parsed.first.value("partition")
        default = snap.default_partition.name if snap.default_partition else None
        target = ",".join([best.partition, *also])
        implicit_default = cur is None and target == default
        if cur != target and not implicit_default:
            changes["partition"] = target
    if best.rewrite_to and not pl.pinned:
        for opt in GPU_OPTIONS:
            value = pl.parsed.first.value(opt)
            if value and any(i.option == opt and i.gpu_type for i in pl.sub.gpu_items):
                new = retype(opt, value, best.rewrite_to)
                if new != value:
                    changes[opt] = new
    return changes


def _placed_request(sub: Submission, gpu_type: str | None) -> dict[str, Any]:
    req = sub.request
    if gpu_type is not None and req.gpu_type is not None:
        req = replace(req, gpu_type=gpu_type)
    return asdict(req)


def _mark(c: Candidate, chosen: str) -> Candidate:
    if c.partition != chosen:
        return c
    return c._replace(chosen=True)


def _why(best: Candidate, eligible: Sequence[Candidate], policy: str) -> str:
    what = "start" if policy == "start" else "expected completion"

    def t(c: Candidate) -> float:  # as ranked: with the preemption penalty
        return ((c.start if policy == "start" else c.end) or 0.0) + c.penalty

    others = [c for c in eligible if c.partition != best.partition]
    if not others:
        return "the only eligible partition"
    nxt = min(others, key=t)
    gap = t(nxt) - t(best)
    risk = " (counting the preemption risk)" if nxt.penalty or best.penalty else ""
    if gap < 1:
        return f"earliest {what}, tied with {nxt.partition}{risk}"
    return f"earliest {what}, {format_duration(gap)} before the next best ({nxt.partition}){risk}"


__all__ = [
    "Candidate",
    "Decision",
    "candidates",
    "choose",
    "decide",
    "passthrough",
    "scope",
]
