"""The optional pyslurm backend (pyslurm 25.11 API), same interface as the CLI one.

pyslurm builds only against the Slurm release of its own major.minor (25.11),
which no Debian ships, so :func:`slurmopt.slurm.backend.get_backend` picks this
backend only where ``import pyslurm`` works and ``pyslurm.__version__`` names
the running Slurm's series (``SLURMOPT_BACKEND=pyslurm`` forces it).

What goes through pyslurm: reading nodes, partitions and jobs
(``Nodes.load()``, ``Partitions.load()``, ``Jobs.load()``) and the job changes
(``Job(id).modify(JobSubmitDescription(...))``, ``Job.hold()``,
``Job.release()``). What stays on the command line, on purpose: ``submit``
(sbatch argv semantics cannot be expressed as a ``JobSubmitDescription``
without re-implementing sbatch), node drain / resume (``scontrol``) and
``Nice=0`` (pyslurm 25.11.2 sends no nice of 0).

What pyslurm 25.11.2 cannot read, and where it comes from instead (measured
live on Slurm 25.11.7, ``scripts/test-matrix slurm25``):

* per-job and per-task GPU requests (``--gpus``, ``--gpus-per-task``):
  pyslurm's ``Job.tres_per_job`` / ``tres_per_task`` parse only ``key=value``
  items, and Slurm writes ``--gpus=a100:1`` as ``gres/gpu:a100:1`` (a typed
  per-task rewrite as ``gres/gpu:h100:1``; only ``--gpus-per-task=1`` as
  ``gres/gpu=1``), so those GPU items read as nothing. They are read with one
  ``squeue -O JobId,tres-per-job,tres-per-task`` per job read (text, no JSON);
* allocated GPUs and their indexes of a running job: from
  ``Job.get_resource_layout_per_node()`` (Slurm's per-node ``gres_detail``),
  as the CLI reads ``gres_detail``;
* reservations and QOS limits of a snapshot: the CLI's reads (``scontrol``,
  ``sacctmgr``), as for the CLI backend.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

from slurmopt.errors import (
    ConfigError,
    JobNotPending,
    SlurmCommandError,
    SlurmoptError,
    SlurmUnavailable,
)
from slurmopt.model import Job, JobRequest, JobState, Node, Partition, Snapshot
from slurmopt.slurm import fields, hostlist, updates
from slurmopt.slurm.backend import ActionResult, CliBackend
from slurmopt.slurm.parse_jobs import filter_jobs, gpus_per_node, job_state, without_cpu
from slurmopt.slurm.parse_nodes import node_state
from slurmopt.slurm.parse_partitions import resolve_nodes
from slurmopt.slurm.parse_reservations import RESERVATIONS_ARGV, parse_reservations_text
from slurmopt.slurm.runner import Runner, is_unavailable_message

log = logging.getLogger(__name__)


def import_pyslurm() -> ModuleType | None:
    """``pyslurm`` if it imports, else None (it needs a matching libslurm)."""
    try:
        return importlib.import_module("pyslurm")
    except Exception as exc:  # ImportError, or OSError from a libslurm mismatch
        log.debug("pyslurm not usable: %r", exc)
        return None


def pyslurm_series(module: ModuleType) -> str:
    """``"25.11"`` from ``pyslurm.__version__`` (``25.11.0`` -> ``25.11``)."""
    parts = str(getattr(module, "__version__", "")).split(".")
    return ".".join(parts[:2])


def _bare(item: str) -> str:
    """``gres/gpu:a100`` -> ``gpu:a100`` (pyslurm 25.11.2's job ``gres_per_node`` keys, live)."""
    for prefix in ("gres/", "gres:"):
        if item.startswith(prefix):
            return item[len(prefix) :]
    return item


def gres_text(gres: Any) -> str:
    """A pyslurm GRES dict back into Slurm's text form.

    ``{"gpu:a100": 4}`` -> ``gpu:a100:4``;
    ``{"gpu:a100": {"count": 2, "indexes": "0-1"}}`` -> ``gpu:a100:2(IDX:0-1)``.
    """
    if isinstance(gres, str):
        return ",".join(_bare(x) for x in fields.split_gres(gres))
    items = []
    for raw, val in dict(gres or {}).items():
        key = _bare(str(raw))
        if isinstance(val, Mapping):
            idx = val.get("indexes")
            items.append(f"{key}:{val.get('count', 0)}" + (f"(IDX:{idx})" if idx else ""))
        else:
            items.append(f"{key}:{val}")
    return ",".join(items)


JOB_TRES_ARGV = (
    "squeue",
    "--noheader",
    "--all",
    "--states=all",
    "--Format=JobId:0|,tres-per-job:0|,tres-per-task:0",
)
"""Per-job and per-task TRES requests as text (pyslurm 25.11.2 drops their GPU items)."""


def parse_job_tres_text(text: str) -> dict[int, tuple[str | None, str | None]]:
    """``squeue`` lines ``123|gres/gpu:1|N/A`` -> {123: ("gres/gpu:1", None)}.

    Lines that are not ``id|per-job|per-task`` are skipped (a site's squeue wrapper
    may add some).
    """
    out: dict[int, tuple[str | None, str | None]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        out[int(parts[0])] = (fields.nonempty(parts[1]), fields.nonempty(parts[2]))
    return out


def tres_text(value: Any) -> str | None:
    """A pyslurm TRES request (``TrackableResources``, a GRES dict or text) -> ``gres/`` text.

    ``TrackableResources`` with ``gres == {"gpu:h100": GPU(count=1)}`` -> ``gres/gpu:h100:1``;
    ``cpu`` and other non-GRES resources are left out (``cpus_per_task`` carries CPUs).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return fields.normalize_tres_spelling(value)
    gres = getattr(value, "gres", value)
    items = []
    for key, val in dict(gres or {}).items():
        count: Any = getattr(val, "count", val)
        if isinstance(count, Mapping):
            count = count.get("count", 0)
        items.append(f"gres/{_bare(str(key))}:{int(count)}")
    return ",".join(items) or None


def _allocation(
    j: Any, nodes: tuple[str, ...]
) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """GPU indexes per node and GPUs per type of a running job, from Slurm's per-node
    ``gres_detail`` (``Job.get_resource_layout_per_node()``); empty where pyslurm has none."""
    layout_fn = getattr(j, "get_resource_layout_per_node", None)
    try:
        layout = dict(layout_fn() or {}) if callable(layout_fn) else {}
    except Exception as exc:  # pyslurm raises ValueError for a bad hostlist
        log.debug("job %s: no resource layout: %r", getattr(j, "id", "?"), exc)
        layout = {}
    return gpus_per_node(
        (node, gres_text((layout.get(node) or {}).get("gres"))) for node in nodes or tuple(layout)
    )


def _values(collection: Any) -> list[Any]:
    """Objects of a pyslurm collection (a dict or a MultiClusterMap)."""
    return list(collection.values()) if hasattr(collection, "values") else list(collection)


def _int(value: Any, default: int = 0) -> int:
    if value is None or isinstance(value, str):
        return default  # "UNLIMITED" and friends
    return int(value)


def _limit(value: Any) -> int | None:
    """pyslurm limit: an int, or ``UNLIMITED`` / None."""
    return None if value is None or isinstance(value, str) else int(value)


def _minutes(value: Any) -> int | None:
    v = _limit(value)
    return None if v is None else v * 60


def _names(value: Any) -> tuple[str, ...] | None:
    """Allowed lists: None / ``["ALL"]`` mean everyone."""
    names = tuple(str(x) for x in (value or ()) if str(x))
    return None if not names or names == ("ALL",) else names


def _denied(value: Any) -> tuple[str, ...]:
    """Deny lists: pyslurm 25.11.2 reports an unset DenyQos / DenyAccounts as ``["ALL"]``
    (seen live on Slurm 25.11.7, where jobs of every QOS and account ran), so ``ALL``
    there means nobody is denied, as an empty list does."""
    names = tuple(str(x) for x in (value or ()) if str(x))
    return () if names == ("ALL",) else names


def _preempt(value: Any) -> str | None:
    """A partition's own PreemptMode; None when off (pyslurm gives the cluster's mode for a
    partition without one, as the CLI reads treat OFF / CLUSTER_GLOBAL)."""
    name = fields.nonempty(value)
    return None if name is None or name.upper() in ("OFF", "CLUSTER_GLOBAL") else name.upper()


def node_from_pyslurm(n: Any) -> Node:
    """A pyslurm ``Node`` -> Node."""
    state, flags = node_state(str(n.state or "UNKNOWN"))
    gpus = fields.gpus_by_type(gres_text(n.configured_gres))
    used = fields.gpus_by_type(gres_text(n.allocated_gres))
    if "" in used and len(gpus) == 1 and "" not in gpus:
        # pyslurm's allocated_gres is the node's allocated TRES (gres/gpu=1: untyped unless
        # AccountingStorageTRES names the type; pyslurm has no gres_used): on a node of one
        # GPU type those are that type's (live on 25.11.7: a t4 node showed all 8 free)
        (only,) = gpus
        used[only] = used.get(only, 0) + used.pop("")
    return Node(
        name=str(n.name),
        state=state,
        flags=flags,
        cpus=_int(n.total_cpus),
        cpus_alloc=_int(n.allocated_cpus),
        memory_mb=_int(n.real_memory),
        memory_alloc_mb=_int(n.allocated_memory),
        gpus=gpus,
        gpus_used={t: c for t, c in used.items() if c > 0 or t in gpus},
        features=tuple(n.available_features or ()),
        active_features=tuple(n.active_features or ()),
        partitions=tuple(n.partitions or ()),
        reason=fields.nonempty(n.reason),
        weight=_int(n.weight, 1),
        extra=fields.nonempty(n.extra) or fields.nonempty(n.comment),
    )


def partition_from_pyslurm(p: Any) -> Partition:
    """A pyslurm ``Partition`` -> Partition (nodes resolved later)."""
    return Partition(
        name=str(p.name),
        nodes=tuple(hostlist.expand(fields.nonempty(p.nodes))),
        state=str(p.state or "UP").upper(),
        is_default=bool(p.is_default),
        max_time_s=_minutes(p.max_time),
        default_time_s=_minutes(p.default_time),
        max_nodes=_limit(p.max_nodes),
        min_nodes=_int(p.min_nodes),
        priority_tier=_int(p.priority_tier, 1),
        priority_job_factor=_int(p.priority_job_factor, 1),
        allow_accounts=_names(p.allowed_accounts),
        deny_accounts=_denied(p.denied_accounts),
        allow_groups=_names(p.allowed_groups),
        allow_qos=_names(p.allowed_qos),
        deny_qos=_denied(p.denied_qos),
        qos=fields.nonempty(getattr(p, "qos", None)),
        preempt_mode=_preempt(getattr(p, "preempt_mode", None)),
        def_mem_per_cpu_mb=_limit(p.default_memory_per_cpu) or None,
        def_mem_per_node_mb=_limit(p.default_memory_per_node) or None,
        max_mem_per_node_mb=_limit(p.max_memory_per_node) or None,
        max_cpus_per_node=_limit(p.max_cpus_per_node),
        oversubscribe=str(p.oversubscribe or "NO").upper(),
        total_cpus=_int(p.total_cpus),
        total_nodes=_int(p.total_nodes),
    )


def job_from_pyslurm(j: Any, tres: tuple[str | None, str | None] | None = None) -> Job:
    """A pyslurm ``Job`` -> Job.

    ``tres``: the job's (per-job, per-task) TRES request text from :data:`JOB_TRES_ARGV`;
    None: what pyslurm itself gives (no GPU items in pyslurm 25.11.2, see the module
    docstring).
    """
    state = job_state(str(j.state or "UNKNOWN"))
    reason = fields.nonempty(j.state_reason)
    priority = _int(j.priority)
    per_node = gres_text(j.gres_per_node)
    if tres is None:
        tres = (
            tres_text(getattr(j, "tres_per_job", None)),
            tres_text(getattr(j, "tres_per_task", None)),
        )
    per_job = fields.normalize_tres_spelling(tres[0])
    per_task = without_cpu(fields.normalize_tres_spelling(tres[1]))
    gpn, tn = fields.gpu_request(",".join("gres/" + x for x in fields.split_gres(per_node)) or None)
    gpj, tj = fields.gpu_request(per_job)
    gpt, tt = fields.gpu_request(per_task)
    nodes = tuple(hostlist.expand(fields.nonempty(j.allocated_nodes)))
    running = state in (JobState.RUNNING, JobState.COMPLETING, JobState.CONFIGURING)
    indexes, gpus_alloc = _allocation(j, nodes) if running else ({}, {})
    if running and not gpus_alloc and gpn and tn:
        gpus_alloc = {tn: gpn * len(nodes)}  # no layout from pyslurm: the typed request
    array_id = _limit(j.array_id) or None
    task = _limit(j.array_task_id)
    return Job(
        job_id=int(j.id),
        name=str(j.name or ""),
        user=str(j.user_name or ""),
        state=state,
        partitions=fields.str_list(j.partition),
        request=JobRequest(
            nodes_min=_int(j.num_nodes, 1) or 1,
            nodes_max=_limit(j.max_nodes) or None,
            ntasks=_int(j.ntasks, 1) or 1,
            cpus_per_task=_int(j.cpus_per_task, 1) or 1,
            cpus_min=_int(j.cpus, 1) or 1,
            mem_per_node_mb=_limit(j.memory_per_node) or None,
            mem_per_cpu_mb=_limit(j.memory_per_cpu) or None,
            mem_per_gpu_mb=_limit(j.memory_per_gpu) or None,
            gpus_per_node=gpn,
            gpus_per_job=gpj,
            gpus_per_task=gpt,
            gpu_type=tn or tj or tt,
            gres=fields.normalize_tres_spelling(
                ",".join("gres:" + x for x in fields.split_gres(per_node)) or None
            ),
            tres_per_job=per_job,
            tres_per_task=per_task,
            constraint=",".join(j.constraints or ()) or None,
            time_limit_s=_minutes(j.time_limit),
            time_min_s=_minutes(j.time_limit_min) or None,
        ),
        account=fields.nonempty(j.account),
        qos=fields.nonempty(j.qos),
        reservation=fields.nonempty(getattr(j, "reservation", None)),
        group=fields.nonempty(j.group_name),
        reason=reason,
        array_job_id=array_id,
        array_task_id=(str(task) if task is not None else fields.nonempty(j.array_tasks_waiting))
        if array_id
        else None,
        priority=priority,
        nice=_int(j.nice),
        held=priority == 0 and (reason or "").startswith("JobHeld"),
        submit_time=fields.epoch(j.submit_time),
        eligible_time=fields.epoch(j.eligible_time),
        start_time=fields.epoch(j.start_time),
        end_time=fields.epoch(j.end_time),
        nodes=nodes,
        gpu_indexes=indexes,
        gpus_alloc=gpus_alloc,
        cpus_alloc=_int(j.cpus) if running else 0,
        memory_alloc_mb=_int(j.memory) if running else 0,
        comment=fields.nonempty(j.comment),
        admin_comment=fields.nonempty(j.admin_comment),
        work_dir=fields.nonempty(j.working_directory),
    )


def gpu_changes(request: JobRequest, gpu_type: str) -> dict[str, Any]:
    """The ``JobSubmitDescription`` fields that rewrite a GPU request to ``gpu_type``
    (``""``: untyped), per node, per job and per task as the request has them.

    pyslurm writes them as ``gres:gpu[:type]:N`` (per node: the other GRES kept);
    a per-task rewrite repeats ``cpus_per_task``, which Slurm 23.02+ keeps in the same
    TRES-per-task string (``cpu=2,gres/gpu:1``) that the rewrite replaces.
    """
    key = f"gpu:{gpu_type}" if gpu_type else "gpu"
    out: dict[str, Any] = {}
    if request.gpus_per_node:
        others: dict[str, int] = {}
        for item in fields.split_gres(request.gres):
            parsed = fields.parse_gres_item(item)
            if parsed is not None and parsed[0] != "gpu":
                others[f"{parsed[0]}:{parsed[1]}" if parsed[1] else parsed[0]] = parsed[2]
        out["gres_per_node"] = {key: request.gpus_per_node, **others}
    if request.gpus_per_job:
        out["gpus"] = {gpu_type: request.gpus_per_job} if gpu_type else request.gpus_per_job
    if request.gpus_per_task:
        out["gpus_per_task"] = (
            {gpu_type: request.gpus_per_task} if gpu_type else request.gpus_per_task
        )
        if request.cpus_per_task > 1:
            out["cpus_per_task"] = request.cpus_per_task
    return out


class PyslurmBackend(CliBackend):
    """Reads and job changes through pyslurm; submit, node changes, accounting: the CLI's."""

    name = "pyslurm"

    def __init__(
        self,
        module: ModuleType,
        runner: Runner | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(runner, sleep=sleep, clock=clock, **kwargs)
        self.pyslurm = module

    @classmethod
    def create(cls, *, forced: bool = False) -> PyslurmBackend:
        """The pyslurm backend, or a clear error when pyslurm cannot be used.

        Raises:
            ConfigError: pyslurm does not import.
        """
        module = import_pyslurm()
        if module is None:
            raise ConfigError(
                "SLURMOPT_BACKEND=pyslurm but 'import pyslurm' fails here "
                "(pyslurm 25.11 needs Slurm 25.11 libraries); use SLURMOPT_BACKEND=cli"
            )
        return cls(module)

    @classmethod
    def create_if_matching(cls, cli: CliBackend) -> PyslurmBackend | None:
        """The pyslurm backend when pyslurm imports and matches the running Slurm, else None."""
        module = import_pyslurm()
        if module is None:
            return None
        try:
            running = cli.version().short
        except SlurmoptError:
            return None
        if pyslurm_series(module) != running:
            log.info("pyslurm %s does not match Slurm %s: CLI backend", module, running)
            return None
        return cls(module, cli.runner)

    # -- reading ---------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except SlurmoptError:
            raise
        except Exception as exc:  # pyslurm.RPCError and anything from the C layer
            text = str(exc)
            if is_unavailable_message(text):
                raise SlurmUnavailable(f"pyslurm {what}: {text}") from exc
            raise SlurmCommandError(["pyslurm", what], 1, text) from exc

    def _jobs(self) -> tuple[Job, ...]:
        """The jobs squeue shows: ``Jobs.load()`` also returns ended jobs that slurmctld
        still holds (``MinJobAge``; live on 25.11.7: 343 records where squeue showed 6),
        which the CLI's ``squeue --json`` leaves out."""
        loaded = [
            j
            for j in _values(self._call("Jobs.load", self.pyslurm.Jobs.load))
            if job_state(str(j.state or "UNKNOWN")).active
        ]
        if not loaded:
            return ()
        tres = parse_job_tres_text(
            self.runner.run(list(JOB_TRES_ARGV), timeout=self.timeout).stdout
        )
        return tuple(job_from_pyslurm(j, tres.get(int(j.id))) for j in loaded)

    def nodes(self) -> tuple[Node, ...]:
        """Every node through pyslurm."""
        loaded = self._call("Nodes.load", self.pyslurm.Nodes.load)
        return tuple(node_from_pyslurm(n) for n in _values(loaded))

    def snapshot(self) -> Snapshot:
        """Nodes, partitions and jobs through pyslurm; any failed load raises."""
        taken = int(self._clock())
        nodes = tuple(
            node_from_pyslurm(n) for n in _values(self._call("Nodes.load", self.pyslurm.Nodes.load))
        )
        parts = resolve_nodes(
            tuple(
                partition_from_pyslurm(p)
                for p in _values(self._call("Partitions.load", self.pyslurm.Partitions.load))
            ),
            nodes,
        )
        hint = self.accounting_hint
        early = self._start_accounting_reads() if hint is None else None
        jobs = self._jobs()
        # reservations, QOS limits and associations: the CLI's reads, as CliBackend.snapshot
        reservations = parse_reservations_text(
            self.runner.run(list(RESERVATIONS_ARGV), timeout=self.timeout).stdout
        )
        qos, associations = hint or self._accounting_rules(parts, early)
        return Snapshot(
            taken_at=taken,
            nodes=nodes,
            partitions=parts,
            jobs=jobs,
            reservations=reservations,
            qos=qos,
            associations=associations,
            slurm_version=str(self.version()),
            cluster_name=self._cluster_name(),
            source="pyslurm",
        )

    def jobs(
        self,
        *,
        job_ids: Iterable[int] | None = None,
        partitions: Iterable[str] | None = None,
        states: Iterable[JobState] | None = None,
    ) -> tuple[Job, ...]:
        return filter_jobs(self._jobs(), job_ids=job_ids, partitions=partitions, states=states)

    # -- job changes -------------------------------------------------------------
    def _modify(self, action: str, job_id: int, fn: Callable[[], Any]) -> ActionResult:
        """One job change with the CLI's rules: EAGAIN retried, "not pending" typed."""

        def once(attempt: int) -> ActionResult:
            try:
                fn()
            except Exception as exc:
                text = str(exc)
                if updates.is_not_pending(text):
                    raise JobNotPending(job_id, text) from exc
                if is_unavailable_message(text):
                    raise SlurmUnavailable(f"pyslurm {action} {job_id}: {text}") from exc
                raise SlurmCommandError(["pyslurm", action, str(job_id)], 1, text) from exc
            return ActionResult(action, str(job_id), ("pyslurm", action), attempt)

        return self._retry_eagain(once, f"{action} {job_id}")

    def _desc(self, **changes: Any) -> Any:
        return self.pyslurm.JobSubmitDescription(**changes)

    def move(
        self,
        job_id: int,
        partition: str | Sequence[str],
        *,
        gpu_type: str | None = None,
        current_request: JobRequest | None = None,
    ) -> ActionResult:
        """``Job.modify(partitions=..., gres_per_node=...)`` in one update."""
        parts = [partition] if isinstance(partition, str) else list(partition)
        changes: dict[str, Any] = {"partitions": parts}
        request = current_request
        if gpu_type is not None:
            if request is None:
                job = self.job(job_id)
                if job is None or not job.pending:
                    raise JobNotPending(job_id, "not pending")
                request = job.request
            if updates.gpu_update_args(request, gpu_type, self.version()):
                changes.update(gpu_changes(request, gpu_type))
        job = self.pyslurm.Job(int(job_id))
        return self._modify("move", job_id, lambda: job.modify(self._desc(**changes)))

    def set_nice(self, job_id: int, nice: int) -> ActionResult:
        if int(nice) == 0:
            # pyslurm 25.11.2 sends no Nice for 0 (``if self.nice:``): the update would be
            # empty and the job keep its nice, so scontrol sets it
            return super().set_nice(job_id, 0)
        job = self.pyslurm.Job(int(job_id))
        return self._modify("nice", job_id, lambda: job.modify(self._desc(nice=int(nice))))

    def set_priority(self, job_id: int, priority: int) -> ActionResult:
        job = self.pyslurm.Job(int(job_id))
        desc = self._desc(priority=int(priority))
        return self._modify("priority", job_id, lambda: job.modify(desc))

    def hold(self, job_id: int) -> ActionResult:
        job = self.pyslurm.Job(int(job_id))
        return self._modify("hold", job_id, job.hold)

    def release(self, job_id: int, *, priority: int | None = None) -> ActionResult:
        job = self.pyslurm.Job(int(job_id))
        res = self._modify("release", job_id, job.release)
        if priority is None:
            return res
        pr = self.set_priority(job_id, priority)
        return ActionResult("release", str(job_id), res.argv + pr.argv, res.attempts + pr.attempts)
