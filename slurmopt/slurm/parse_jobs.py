"""Jobs from ``squeue --json`` into :class:`slurmopt.model.Job`.

The same keys exist in 22.05 (openapi v0.0.38: plain values, ``job_state``
a string, ``gres:gpu`` spellings) and 23.02+ (data_parser: number objects,
``job_state`` a list, ``gres/gpu`` spellings); this parser reads both and
normalizes them to one form:

* GPU requests in the 23.02+ spelling (``gres/gpu:a100:2``), counts per node,
  per job and per task, and the requested type;
* "not set" as None (Slurm prints 0, null or ``{"set": false}`` for it);
* held = ``hold`` (23.02+) or priority 0 with reason ``JobHeld*`` (22.05);
* allocated CPUs / memory from ``tres_alloc_str``; GPU indexes from
  ``gres_detail`` (one entry per allocated node, in node order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from slurmopt.errors import SlurmParseError
from slurmopt.model import Job, JobRequest, JobState, parse_enum
from slurmopt.slurm import fields, hostlist
from slurmopt.slurm.parse_nodes import load_json


def job_state(value: Any) -> JobState:
    """``"PENDING"`` (22.05) or ``["PENDING", "REQUEUED"]`` (23.02+) -> base state."""
    if isinstance(value, list):
        value = value[0] if value else "UNKNOWN"
    return parse_enum(JobState, str(value or "UNKNOWN"), what="job")


def _cpus_per_task(raw: Mapping[str, Any], ntasks: int) -> int:
    cpt = fields.opt_int(raw.get("cpus_per_task"), zero_is_none=True)
    if cpt is not None:
        return cpt
    # 22.05's v0.0.38 prints null even for -c N: recover it from tres_per_task
    # ("cpu=2") or from total CPUs / tasks, as Slurm computed them.
    per_task = fields.parse_tres_str(raw.get("tres_per_task")).get("cpu")
    if per_task and per_task.isdigit():
        return int(per_task)
    cpus = fields.int_or(raw.get("cpus"), 0)
    if ntasks > 0 and cpus >= ntasks and cpus % ntasks == 0:
        return cpus // ntasks
    return 1


def _mem_per_gpu(raw: Mapping[str, Any]) -> int | None:
    for raw_item in (fields.nonempty(raw.get("memory_per_tres")) or "").split(","):
        item = raw_item.strip()
        if item.startswith(("gres/gpu", "gres:gpu")):
            count = item.rsplit(":", 1)[-1].rsplit("=", 1)[-1]
            return fields.parse_mem_mb(count)
    return None


def without_cpu(tres: str | None) -> str | None:
    """Drop ``cpu=N`` from a TRES-per-task string: 23.02+ print it for ``-c N``, 22.05
    does not, and :attr:`JobRequest.cpus_per_task` carries it on every version."""
    if tres is None:
        return None
    kept = [x for x in tres.split(",") if x.strip() and not x.strip().startswith("cpu=")]
    return ",".join(kept) or None


def parse_request(raw: Mapping[str, Any]) -> JobRequest:
    """The request part of one job record."""
    ntasks = fields.int_or(raw.get("tasks"), 1) or 1
    per_node = fields.normalize_tres_spelling(raw.get("tres_per_node"))
    per_job = fields.normalize_tres_spelling(raw.get("tres_per_job"))
    per_task = without_cpu(fields.normalize_tres_spelling(raw.get("tres_per_task")))
    gpn, tn = fields.gpu_request(per_node)
    gpj, tj = fields.gpu_request(per_job)
    gpt, tt = fields.gpu_request(per_task)
    shared = raw.get("shared")
    shared_words = [str(s).lower() for s in shared] if isinstance(shared, list) else [str(shared)]
    nodes_max = fields.opt_int(raw.get("max_nodes"), zero_is_none=True)
    return JobRequest(
        nodes_min=fields.int_or(raw.get("node_count"), 1) or 1,
        nodes_max=nodes_max,
        ntasks=ntasks,
        cpus_per_task=_cpus_per_task(raw, ntasks),
        cpus_min=fields.int_or(raw.get("cpus"), 1) or 1,
        mem_per_node_mb=fields.opt_int(raw.get("memory_per_node"), zero_is_none=True),
        mem_per_cpu_mb=fields.opt_int(raw.get("memory_per_cpu"), zero_is_none=True),
        mem_per_gpu_mb=_mem_per_gpu(raw),
        gpus_per_node=gpn,
        gpus_per_job=gpj,
        gpus_per_task=gpt,
        gpu_type=tn or tj or tt,
        gres=per_node,
        tres_per_job=per_job,
        tres_per_task=per_task,
        constraint=fields.nonempty(raw.get("features")),
        time_limit_s=fields.minutes_to_s(raw.get("time_limit")),
        time_min_s=fields.minutes_to_s(fields.opt_int(raw.get("time_minimum"), zero_is_none=True)),
        exclusive="none" in shared_words or "exclusive" in shared_words,
    )


def _gres_detail(
    detail: Iterable[Any] | None, nodes: tuple[str, ...]
) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    return gpus_per_node(
        (node, str(entry)) for node, entry in zip(nodes, detail or (), strict=False)
    )


def gpus_per_node(
    pairs: Iterable[tuple[str, str]],
) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """GPU indexes per node and GPUs per type, from ``(node, gres detail text)`` pairs."""
    indexes: dict[str, tuple[int, ...]] = {}
    alloc: dict[str, int] = {}
    for node, text in pairs:
        idx = fields.gpu_indexes(text)
        if idx:
            indexes[node] = idx
        for gtype, count in fields.gpus_by_type(text).items():
            alloc[gtype] = alloc.get(gtype, 0) + count
    return indexes, alloc


def _array(raw: Mapping[str, Any]) -> tuple[int | None, str | None]:
    array_job = fields.opt_int(raw.get("array_job_id"), zero_is_none=True)
    if array_job is None:
        return None, None
    task = fields.opt_int(raw.get("array_task_id"))
    if task is not None:
        return array_job, str(task)
    return array_job, fields.nonempty(raw.get("array_task_string"))


def parse_job(raw: Mapping[str, Any]) -> Job:
    """One job record (either layout) -> Job.

    Raises:
        SlurmParseError: a required field is missing or malformed.
    """
    try:
        state = job_state(raw.get("job_state"))
        reason = fields.nonempty(raw.get("state_reason"))
        priority = fields.int_or(raw.get("priority"), 0)
        hold = raw.get("hold")
        held = bool(hold) if isinstance(hold, bool) else False
        held = held or (priority == 0 and (reason or "").startswith("JobHeld"))
        nodes = tuple(hostlist.expand(fields.nonempty(raw.get("nodes"))))
        active_alloc = state not in (JobState.PENDING,)
        indexes, gpus_alloc = _gres_detail(raw.get("gres_detail"), nodes)
        alloc = fields.parse_tres_str(raw.get("tres_alloc_str")) if active_alloc else {}
        array_job, array_task = _array(raw)
        return Job(
            job_id=int(fields.num(raw["job_id"])),
            name=str(raw.get("name") or ""),
            user=str(raw.get("user_name") or raw.get("user_id") or ""),
            state=state,
            partitions=fields.str_list(raw.get("partition")),
            request=parse_request(raw),
            account=fields.nonempty(raw.get("account")),
            qos=fields.nonempty(raw.get("qos")),
            reservation=fields.nonempty(raw.get("resv_name")),
            group=fields.nonempty(raw.get("group_name")),
            reason=reason,
            array_job_id=array_job,
            array_task_id=array_task,
            priority=priority,
            nice=fields.int_or(raw.get("nice"), 0),
            held=held,
            submit_time=fields.epoch(raw.get("submit_time")),
            eligible_time=fields.epoch(raw.get("eligible_time")),
            start_time=fields.epoch(raw.get("start_time")),
            end_time=fields.epoch(raw.get("end_time")),
            nodes=nodes,
            gpu_indexes=indexes,
            gpus_alloc=gpus_alloc,
            cpus_alloc=int(alloc["cpu"]) if alloc.get("cpu", "").isdigit() else 0,
            memory_alloc_mb=fields.parse_mem_mb(alloc.get("mem")) or 0,
            dependency=fields.nonempty(raw.get("dependency")),
            comment=fields.nonempty(raw.get("comment")),
            admin_comment=fields.nonempty(raw.get("admin_comment")),
            work_dir=fields.nonempty(raw.get("current_working_directory")),
        )
    except SlurmParseError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SlurmParseError(f"malformed job record {raw.get('job_id', '?')!r}: {exc!r}") from exc


def parse_jobs_json(text: str) -> tuple[Job, ...]:
    """The whole ``squeue --json`` output -> jobs.

    Raises:
        SlurmParseError: not JSON, Slurm reported errors, or no ``jobs`` list.
    """
    data = load_json(text, what="jobs")
    jobs = data.get("jobs")
    if not isinstance(jobs, list):
        raise SlurmParseError("job JSON has no 'jobs' list")
    return tuple(parse_job(j) for j in jobs)


def filter_jobs(
    jobs: Iterable[Job],
    *,
    job_ids: Iterable[int] | None = None,
    partitions: Iterable[str] | None = None,
    states: Iterable[JobState] | None = None,
    users: Iterable[str] | None = None,
) -> tuple[Job, ...]:
    """Client-side filtering (22.05 ignores ``-j``/``-p``/``-t`` with ``--json``).

    A job id matches the job itself and, for arrays, every task of that array.
    A partition matches when it is one of the job's partitions.
    """
    ids = set(job_ids) if job_ids is not None else None
    parts = set(partitions) if partitions is not None else None
    sts = set(states) if states is not None else None
    usrs = set(users) if users is not None else None
    out = []
    for j in jobs:
        if ids is not None and j.job_id not in ids and j.array_job_id not in ids:
            continue
        if parts is not None and not parts.intersection(j.partitions):
            continue
        if sts is not None and j.state not in sts:
            continue
        if usrs is not None and j.user not in usrs:
            continue
        out.append(j)
    return tuple(out)
