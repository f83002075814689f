"""Which partitions can ever run a job, and why not where they cannot.

Checks, in this order (the first failing one is the reason): the partition is
in the user's allowed set; it is UP; account / group / QOS allow and deny
lists (a partition that restricts an account, group or QOS the job does not
state is not eligible); MinNodes / MaxNodes;
MaxTime against the job's limit; GPU type (a typed request keeps its type
unless the caller marks it rewritable; untyped requests go anywhere with
GPUs); MaxCPUsPerNode / MaxMemPerNode; enough available (not down, not
drained, not held by an active reservation the job did not ask for) nodes that
can each hold one share (CPUs, memory, GPUs of the type, ``--constraint``
features); and the predicted runtime there within the time
limit.

For each (job, partition) pair :func:`check` returns either an :class:`Option`
(the per-node demand, the nodes that could ever host it, the GPU type rewrite
and the predicted runtime there) or a human-readable reason. The reasons are
what ``slurmopt plan`` and ``optsub --optsub-explain`` print.

Runtime convention. The job's base runtime is its predicted runtime when one is
passed in (and ``use_predictions`` is on), else its time limit, else
``default_runtime_s``. The base runtime (limit or prediction) is taken to be
written for the *slowest* of the partitions the job currently lists: the user's
limit must hold wherever Slurm may start the job. So with ``s_user`` the
lowest speed among the listed partitions, the runtime on partition ``p`` is
``base * s_user / speed(p)``. A partition slower than that is only eligible
when a prediction shows the job still ends within its time limit there.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from slurmopt.lazylog import get_logger
from slurmopt.model import Job, Node, Partition, QosLimits
from slurmopt.optimize.access import Identity
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.slurm import constraint
from slurmopt.slurm.fields import format_duration

log = get_logger(__name__)

WHOLE = -1
"""Per-node demand meaning "the whole node" (exclusive jobs, jobs without --mem)."""


class Option(NamedTuple):
    """One eligible partition for one job.

    This module's records are NamedTuples: optsub defines them on its submit path,
    where a frozen dataclass costs about 0.5 ms per process (issue 16).
    """

    part: int
    """Index of the partition in the problem."""
    nodes: tuple[int, ...]
    """Indices of the available nodes of the partition that could ever host one share."""
    n_nodes: int
    cpu: int
    """CPUs per node (:data:`WHOLE`: all of the node's)."""
    mem: int
    """MiB per node (:data:`WHOLE`: all of the node's)."""
    gpu: int
    """GPUs per node (:data:`WHOLE`: all of the node's)."""
    gpu_type: str | None
    """GPU type the job uses there (None: CPU job or untyped request)."""
    rewrite: str | None
    """New GPU type the request must be rewritten to (None: unchanged)."""
    speed: float
    runtime: float
    """Expected runtime there, seconds."""
    limit_s: int | None
    """Time limit the job runs under there (None: unlimited)."""


class JobContext(NamedTuple):
    """What eligibility needs to know about one job beyond the snapshot."""

    allowed: frozenset[str]
    """Partitions the user allowed (their -p list, or every partition when none)."""
    pinned: bool
    """True when a typed GPU request must keep its type."""
    prediction: float | None
    job_type: str | None
    reserved: dict[int, str] | None = None
    """Node index -> name of an active reservation that keeps that node from this job."""
    who: Identity | None = None
    """The account, QOS and groups Slurm checks the job as (None: the job's own fields)."""


def partition_gpu_types(
    part: Partition, nodes: Sequence[Node], index: dict[str, int]
) -> Counter[str]:
    """GPUs per type over the partition's available nodes."""
    out: Counter[str] = Counter()
    for name in part.nodes:
        i = index.get(name)
        if i is not None and nodes[i].available:
            for t, n in nodes[i].gpus.items():
                out[t] += n
    return out


def dominant_type(types: Counter[str]) -> str | None:
    """The type with the most GPUs (ties: name order); None without GPUs."""
    best = sorted(((-n, t) for t, n in types.items() if n > 0))
    return best[0][1] if best else None


def per_node_demand(job: Job, part: Partition) -> tuple[int, int, int, int]:
    """``(nodes, cpus, mem MiB, gpus)`` per node; :data:`WHOLE` for whole-node amounts."""
    req = job.request
    k = max(1, req.nodes_min)
    cpu = max(1, math.ceil(max(req.cpus_min, req.ntasks * req.cpus_per_task) / k))
    gpu = max(
        req.gpus_per_node,
        math.ceil(req.gpus_per_job / k),
        math.ceil(req.gpus_per_task * req.ntasks / k),
    )
    if req.mem_per_node_mb:
        mem = req.mem_per_node_mb
    elif req.mem_per_cpu_mb:
        mem = req.mem_per_cpu_mb * cpu
    elif req.mem_per_gpu_mb and gpu:
        mem = req.mem_per_gpu_mb * gpu
    elif part.def_mem_per_cpu_mb:
        mem = part.def_mem_per_cpu_mb * cpu
    elif part.def_mem_per_node_mb:
        mem = part.def_mem_per_node_mb
    else:
        mem = WHOLE  # Slurm's DefMemPerNode defaults to the node's RealMemory
    if req.exclusive:
        return k, WHOLE, WHOLE, WHOLE
    return k, cpu, mem, gpu


def _access_reason(job: Job, part: Partition, who: Identity | None = None) -> str | None:
    """Slurm's partition access rules, as slurmctld applies them at submit and update.

    ``who``: the account and QOS Slurm will use (the job's, else the user's defaults
    from accounting) and every group of the user (:mod:`slurmopt.optimize.access`).
    Where the account, group or QOS is still not known (no accounting read, a user
    unknown to this machine), a partition that restricts it is not eligible: placing
    the job there could turn a valid submission into a rejected one.
    """
    if who is None:
        who = Identity(job.account, job.qos, None if job.group is None else frozenset({job.group}))
    account = _list_reason(
        "account", "Accounts", "-A", who.account, part.allow_accounts, part.deny_accounts
    )
    if account:
        return account + (" (the user's default account)" if who.account_default else "")
    groups = _group_reason(job.user, who.groups, part.allow_groups)
    if groups:
        return groups
    qos = _list_reason("QOS", "Qos", "-q", who.qos, part.allow_qos, part.deny_qos)
    if qos:
        return qos + (" (the default QOS of the job's association)" if who.qos_default else "")
    return None


def _group_reason(
    user: str, groups: frozenset[str] | None, allow: tuple[str, ...] | None
) -> str | None:
    """AllowGroups: the user may use the partition if any of the user's groups is listed."""
    if allow is None:
        return None
    if not groups:
        return "the partition restricts groups and the job's group is not known"
    if groups & set(allow):
        return None
    if len(groups) == 1:
        return f"group {next(iter(groups))} not in AllowGroups={','.join(allow)}"
    return f"no group of user {user} ({','.join(sorted(groups))}) in AllowGroups={','.join(allow)}"


def _list_reason(
    what: str,
    key: str,
    option: str | None,
    value: str | None,
    allow: tuple[str, ...] | None,
    deny: tuple[str, ...],
) -> str | None:
    if allow is None and not deny:
        return None
    if value is None:
        return f"the partition restricts {what}s and the job's {what} is not known" + (
            f" ({option})" if option else ""
        )
    if allow is not None and value not in allow:
        return f"{what} {value} not in Allow{key}={','.join(allow)}"
    if value in deny:
        return f"{what} {value} is in Deny{key}"
    return None


def _drop_reserved(fit: tuple[int, ...], ctx: JobContext) -> tuple[tuple[int, ...], str]:
    """The fitting nodes less those an active reservation keeps from the job, and a note."""
    if not ctx.reserved:
        return fit, ""
    held: dict[str, int] = {}
    for i in fit:
        if i in ctx.reserved:
            held[ctx.reserved[i]] = held.get(ctx.reserved[i], 0) + 1
    note = ", ".join(
        f"{n} node(s) in reservation {r}, which the job is not in" for r, n in sorted(held.items())
    )
    return tuple(i for i in fit if i not in ctx.reserved), (f" ({note})" if note else "")


class QosUse(NamedTuple):
    """GPUs that running jobs hold under each QOS (for GrpTRES and MaxTRESPerUser): one
    count per QOS, one per (QOS, user). A job counts under its partition's QOS and
    under its own QOS (once where they are the same), as Slurm charges both."""

    total: dict[str, int]
    per_user: dict[tuple[str, str], int]

    @classmethod
    def of(cls, jobs: Sequence[Job], partitions: Sequence[Partition]) -> QosUse:
        qos_of = {p.name: p.qos for p in partitions if p.qos}
        total: dict[str, int] = {}
        per_user: dict[tuple[str, str], int] = {}
        for j in jobs:
            if not j.running:
                continue
            part_q = next((qos_of[p] for p in j.partitions if p in qos_of), None)
            n = sum(j.gpus_alloc.values())
            for q in {part_q, j.qos}:
                if q is None:
                    continue
                total[q] = total.get(q, 0) + n
                per_user[(q, j.user)] = per_user.get((q, j.user), 0) + n
        return cls(total, per_user)


def _qos_sources(
    part: Partition, job_qos: str | None, limits: dict[str, QosLimits]
) -> list[tuple[QosLimits, str]]:
    """The QOSes whose limits apply there, in Slurm's order: the partition QOS first
    (its limits win), unless the job's QOS has the OverPartQOS flag."""
    pq = limits.get(part.qos) if part.qos else None
    jq = limits.get(job_qos) if job_qos and job_qos != part.qos else None
    out = [(q, label) for q, label in ((pq, "partition QOS"), (jq, "the job's QOS")) if q]
    if jq is not None and jq.over_part_qos:
        out.reverse()
    return [(q, f"{label} {q.name}") for q, label in out]


def qos_reason(
    job: Job,
    part: Partition,
    limits: dict[str, QosLimits],
    use: QosUse | None,
    job_qos: str | None = None,
) -> str | None:
    """Why a QOS would keep the job pending there now (None: it would not).

    The QOSes are the partition's and the job's own (``job_qos``: the one Slurm
    uses, default included; None: ``job.qos``); for each limit the first QOS that
    sets it decides (:func:`_qos_sources`). MaxWall against the job's time limit;
    MaxTRESPerJob on gres/gpu against the GPUs it asks for; MaxTRESPerUser and
    GrpTRES on gres/gpu against those plus the GPUs its user's (or everyone's)
    running jobs already hold under that QOS.
    """
    sources = _qos_sources(part, job.qos if job_qos is None else job_qos, limits)
    if not sources:
        return None

    def first(attr: str) -> tuple[int, QosLimits, str] | None:
        for q, label in sources:
            v = getattr(q, attr)
            if v is not None:
                return int(v), q, label
        return None

    limit = job.request.time_limit_s
    wall = first("max_wall_s")
    if wall is not None and limit is not None and limit > wall[0]:
        return (
            f"time limit {format_duration(limit)} exceeds MaxWall {format_duration(wall[0])} "
            f"of {wall[2]}"
        )
    want = job.request.gpus_total()
    per_job = first("max_gpus_per_job")
    if per_job is not None and want > per_job[0]:
        return f"{want} GPU(s) exceed MaxTRESPerJob gres/gpu={per_job[0]} of {per_job[2]}"
    per_user = first("max_gpus_per_user")
    if per_user is not None and want:
        held = use.per_user.get((per_user[1].name, job.user), 0) if use else 0
        if held + want > per_user[0]:
            return (
                f"{want} GPU(s) + {held} held by {job.user} exceed MaxTRESPerUser "
                f"gres/gpu={per_user[0]} of {per_user[2]}"
            )
    grp_lim = first("grp_gpus")
    if grp_lim is not None and want:
        busy = use.total.get(grp_lim[1].name, 0) if use else 0
        if busy + want > grp_lim[0]:
            return (
                f"{want} GPU(s) + {busy} running exceed GrpTRES gres/gpu={grp_lim[0]} "
                f"of {grp_lim[2]}"
            )
    return None


def preemptable(partitions: Sequence[Partition]) -> frozenset[str]:
    """Partitions whose jobs may be preempted (``PreemptType=preempt/partition_prio``):
    the partition's own PreemptMode is set and not OFF, and a partition of a higher
    PriorityTier shares a node with it (whose jobs preempt its jobs there)."""
    out: set[str] = set()
    for p in partitions:
        if p.preempt_mode is None or p.preempt_mode.upper() == "OFF":
            continue
        nodes = set(p.nodes)
        if any(q.priority_tier > p.priority_tier and nodes & set(q.nodes) for q in partitions):
            out.add(p.name)
    return frozenset(out)


def speed_for(
    job_type: str | None, part: Partition, gpu_type: str | None, cfg: OptimizeConfig
) -> float:
    """Speed factor of a job on a partition when it uses ``gpu_type`` there (None: CPU)."""
    if part.name in cfg.partition_speed:
        base = float(cfg.partition_speed[part.name])
    else:
        base = cfg.speed_of_gpu(gpu_type or "cpu")
    return base * cfg.affinity_of(job_type, gpu_type or "cpu")


def gpu_type_in(
    job: Job, types: Counter[str], pinned: bool, cfg: OptimizeConfig
) -> tuple[str | None, str | None, str | None]:
    """``(type used, rewrite, reason)`` for a GPU job on a partition with GPUs ``types``.

    An untyped request may land on any GPU type of the partition: it is
    counted at the slowest one (so a time limit is never broken). A typed
    request rewritten to this partition takes its dominant type.
    """
    want = job.request.gpu_type
    if not any(n > 0 for n in types.values()):
        return None, None, "partition has no GPUs"
    if want is None:
        slowest = min(
            (t for t, n in types.items() if n > 0), key=lambda t: (cfg.speed_of_gpu(t), t)
        )
        return slowest, None, None
    if types.get(want, 0) > 0:
        return want, None, None
    have = ",".join(sorted(types))
    if pinned:
        return None, None, f"job is pinned to GPU type {want}; partition has {have}"
    new = dominant_type(types)
    return new, new, None


def check(  # noqa: PLR0911, PLR0912, PLR0913  one return per eligibility rule with its reason, in Slurm's order; the arguments are per-problem caches
    job: Job,
    pi: int,
    part: Partition,
    nodes: Sequence[Node],
    index: dict[str, int],
    ctx: JobContext,
    s_user: float,
    cfg: OptimizeConfig,
    cache: dict[tuple[Any, ...], Any] | None = None,
) -> Option | str:
    """Eligibility of ``job`` on partition ``part`` (index ``pi``): an :class:`Option` or why not.

    ``cache`` (one dict per problem build) memoizes per-partition work shared by
    jobs with the same demand.
    """
    cache = {} if cache is None else cache
    if part.name not in ctx.allowed:
        return f"not in the job's allowed partitions ({','.join(sorted(ctx.allowed))})"
    if not part.up:
        return f"partition is {part.state}"
    access = _access_reason(job, part, ctx.who)
    if access:
        return access
    k, cpu, mem, gpu = per_node_demand(job, part)
    if part.max_nodes is not None and k > part.max_nodes:
        return f"job needs {k} nodes, MaxNodes={part.max_nodes}"
    if k < part.min_nodes:
        return f"job needs {k} nodes, MinNodes={part.min_nodes}"
    req_limit = job.request.time_limit_s
    if req_limit is not None and part.max_time_s is not None and req_limit > part.max_time_s:
        asked, most = format_duration(req_limit), format_duration(part.max_time_s)
        return f"time limit {asked} exceeds MaxTime {most}"
    gtype: str | None = None
    rewrite: str | None = None
    if job.request.wants_gpus:
        tkey = ("types", pi)
        if tkey not in cache:
            cache[tkey] = partition_gpu_types(part, nodes, index)
        types = cache[tkey]
        gkey = ("gtype", pi, job.request.gpu_type, ctx.pinned)
        if gkey not in cache:
            cache[gkey] = gpu_type_in(job, types, ctx.pinned, cfg)
        gtype, rewrite, why = cache[gkey]
        if why:
            return str(why)
    if part.max_cpus_per_node is not None and cpu != WHOLE and cpu > part.max_cpus_per_node:
        return f"job needs {cpu} CPUs per node, MaxCPUsPerNode={part.max_cpus_per_node}"
    if part.max_mem_per_node_mb is not None and mem != WHOLE and mem > part.max_mem_per_node_mb:
        return f"job needs {mem} MiB per node, MaxMemPerNode={part.max_mem_per_node_mb}"
    fkey = ("fit", pi, cpu, mem, gpu, gtype, job.request.gpu_type is None)
    if fkey not in cache:
        cache[fkey] = _fitting_nodes(part, nodes, index, cpu, mem, gpu, gtype, job.request.gpu_type)
    fit, down = cache[fkey]
    want = constraint.parse(job.request.constraint)
    if want is not None:
        fit = tuple(i for i in fit if want.matches(nodes[i].features, nodes[i].active_features))
    fit, reserved_note = _drop_reserved(fit, ctx)
    if len(fit) < k:
        return (
            _fit_reason(k, cpu, mem, gpu, gtype, len(fit), down)
            + reserved_note
            + (f" (constraint {job.request.constraint})" if want is not None else "")
        )
    skey = ("speed", pi, gtype, ctx.job_type)
    if skey not in cache:
        cache[skey] = speed_for(ctx.job_type, part, gtype, cfg)
    speed = float(cache[skey])
    limit = req_limit if req_limit is not None else (part.default_time_s or part.max_time_s)
    if cfg.use_predictions and ctx.prediction is not None:
        base = float(ctx.prediction)
    elif req_limit is not None:
        base = float(req_limit)
    else:
        base = float(cfg.default_runtime_s)
        if limit is not None:
            base = min(base, float(limit))
    runtime = base * s_user / speed
    if limit is not None and runtime > limit * (1 + 1e-9):
        return (
            f"predicted runtime {format_duration(runtime)} at speed {speed:g} exceeds its time "
            f"limit {format_duration(limit)}"
        )
    return Option(pi, fit, k, cpu, mem, gpu, gtype, rewrite, speed, runtime, limit)


def _fitting_nodes(
    part: Partition,
    nodes: Sequence[Node],
    index: dict[str, int],
    cpu: int,
    mem: int,
    gpu: int,
    gtype: str | None,
    requested: str | None,
) -> tuple[tuple[int, ...], int]:
    fit: list[int] = []
    down = 0
    for name in part.nodes:
        i = index.get(name)
        if i is None:
            continue
        n = nodes[i]
        if not n.available:
            down += 1
            continue
        if requested is not None and gtype:
            have_gpu = n.gpus.get(gtype, 0)
            ok_gpu = have_gpu > 0 if gpu == WHOLE else have_gpu >= gpu
        else:
            ok_gpu = gpu in (0, WHOLE) or n.gpu_total >= gpu
        if (cpu == WHOLE or n.cpus >= cpu) and (mem == WHOLE or n.memory_mb >= mem) and ok_gpu:
            fit.append(i)
    return tuple(fit), down


def _fit_reason(
    k: int, cpu: int, mem: int, gpu: int, gtype: str | None, fit: int, down: int
) -> str:
    what = [("whole node" if cpu == WHOLE else f"{cpu} CPUs")]
    if cpu != WHOLE:
        what.append("all its memory" if mem == WHOLE else f"{mem} MiB")
        if gpu:
            what.append(f"{gpu} {gtype + ' ' if gtype else ''}GPUs")
    tail = f" ({down} down or drained)" if down else ""
    return (
        f"needs {k} node(s) with {', '.join(what)} each; {fit} available node(s) can ever fit{tail}"
    )


def allowed_set(
    job: Job, parts: Sequence[Partition], explicit: Collection[str] | None
) -> frozenset[str]:
    """The user's allowed set: ``explicit``, else the job's list, else every partition
    but the hidden ones (``Hidden=YES``: a job goes there only when it names it)."""
    if explicit is not None:
        return frozenset(explicit)
    if job.partitions:
        return frozenset(job.partitions)
    return frozenset(p.name for p in parts if not p.hidden)
