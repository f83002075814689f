"""What a parsed submission asks for, in the shared model's terms (standard library only).

Turns :class:`~slurmopt.slurm.sbatch_args.ParsedArgs` into a :class:`Submission`
(partitions, GPU request with its type and where it was written, a
:class:`~slurmopt.model.JobRequest`) and rewrites GPU values to another type.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from slurmopt.model import JobRequest
from slurmopt.slurm.fields import parse_mem_option, parse_time_option
from slurmopt.slurm.sbatch_args import Component, ParsedArgs

# Options that may carry a GPU request, and how their value is written.
GPU_OPTIONS = ("gres", "gpus", "gpus-per-node", "gpus-per-task", "gpus-per-socket", "tres-per-task")
_GRES_STYLE = {"gres", "tres-per-task"}  # comma list of name[:type][:count]


class GpuItem(NamedTuple):
    """One GPU request item as written (``gpu:a100:2`` in --gres, ``a100:2`` in --gpus)."""

    option: str
    gpu_type: str | None
    number: int


def _count(s: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", s)
    if not m:
        raise ValueError(f"bad GPU count {s!r}")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(m.group(1)) * mult


def _split_items(value: str) -> list[str]:
    return [x for x in value.split(",") if x]


def gpu_items(option: str, value: str) -> list[GpuItem]:
    """The GPU items of one option's value (none when it asks for other GRES only).

    Raises:
        ValueError: a GPU item this parser cannot read.
    """
    if option in _GRES_STYLE:
        out = []
        for item in _split_items(value):
            name = item.removeprefix("gres/").removeprefix("gres:")
            parts = name.split(":")
            if parts[0] != "gpu":
                continue
            if len(parts) == 1:
                out.append(GpuItem(option, None, 1))
            elif len(parts) == 2:
                if parts[1][:1].isdigit():
                    out.append(GpuItem(option, None, _count(parts[1])))
                else:
                    out.append(GpuItem(option, parts[1], 1))
            else:
                out.append(GpuItem(option, parts[1], _count(parts[2])))
        return out
    out = []
    for item in _split_items(value):
        parts = item.split(":")
        if len(parts) == 1:
            out.append(GpuItem(option, None, _count(parts[0])))
        else:
            out.append(GpuItem(option, parts[0], _count(parts[-1])))
    return out


def retype(option: str, value: str, new_type: str) -> str:
    """``value`` with every typed GPU item's type replaced by ``new_type``; the rest unchanged."""
    items = value.split(",")
    out = []
    for raw in items:
        item = raw
        if option in _GRES_STYLE:
            prefix = ""
            name = item
            for p in ("gres/", "gres:"):
                if name.startswith(p):
                    prefix, name = p, name[len(p) :]
            parts = name.split(":")
            if parts[0] == "gpu" and len(parts) >= 2 and not parts[1][:1].isdigit():
                parts[1] = new_type
                item = prefix + ":".join(parts)
        else:
            parts = item.split(":")
            if len(parts) >= 2:
                parts[0] = new_type
                item = ":".join(parts)
        out.append(item)
    return ",".join(out)


_BEGIN_REL = re.compile(r"^now(?:\+(\d+)([smhdw][a-z]*)?)?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_begin(value: str, now: float) -> float | None:
    """``--begin`` as epoch seconds, for the forms ``now[+N[unit]]`` and ISO dates.

    Other forms (``midnight``, ``teatime``, ``MM/DD/YY``) give None: the job is
    then ranked as if eligible now, which only makes optsub optimistic.
    """
    import datetime as dt

    v = value.strip().lower()
    m = _BEGIN_REL.match(v)
    if m:
        n = int(m.group(1) or 0)
        return now + n * _UNIT_S[(m.group(2) or "s")[0]]
    try:
        return dt.datetime.fromisoformat(value.strip()).timestamp()
    except ValueError:
        return None


class Submission(NamedTuple):
    """What optsub needs to know about one (non-heterogeneous) submission (a NamedTuple:
    cheap to define on optsub's submit path)."""

    partitions: tuple[str, ...] | None
    """The partitions the user named (None: none named)."""
    partition_source: str | None
    gpu_items: tuple[GpuItem, ...]
    request: JobRequest
    account: str | None = None
    qos: str | None = None
    array: str | None = None
    hold: bool = False
    begin: str | None = None
    dependency: str | None = None
    test_only: bool = False
    parsable: bool = False
    clusters: str | None = None
    reservation: str | None = None
    nodelist: str | None = None

    @property
    def gpu_types(self) -> frozenset[str]:
        return frozenset(i.gpu_type for i in self.gpu_items if i.gpu_type)

    @property
    def gpu_type(self) -> str | None:
        """The single requested GPU type, if the request is typed with exactly one type."""
        types = self.gpu_types
        return next(iter(types)) if len(types) == 1 else None


def _int(comp: Component, option: str, default: int) -> int:
    v = comp.value(option)
    if v is None:
        return default
    m = re.match(r"\d+", v)
    return int(m.group(0)) if m else default


def submission(parsed: ParsedArgs, index: int = 0) -> Submission:
    """Extract the decision's inputs from one component.

    Raises:
        ValueError: a value optsub cannot read (the caller fails open).
    """
    comp = parsed.components[index]
    part = comp.get("partition")
    partitions = None
    if part is not None and part.value:
        partitions = tuple(p for p in part.value.split(",") if p)
    items: list[GpuItem] = []
    for opt in GPU_OPTIONS:
        v = comp.value(opt)
        if v:
            items.extend(gpu_items(opt, v))
    nodes_min, nodes_max = 1, None
    nv = comp.value("nodes")
    if nv:
        lo, _, hi = nv.partition("-")
        nodes_min = int(re.match(r"\d+", lo).group(0)) if re.match(r"\d+", lo) else 1  # type: ignore[union-attr]
        nodes_max = int(hi) if hi.isdigit() else None
    ntasks = _int(comp, "ntasks", 1)
    cpt = _int(comp, "cpus-per-task", 1)
    per_node = sum(i.number for i in items if i.option in ("gres", "gpus-per-node"))
    per_job = sum(i.number for i in items if i.option == "gpus")
    per_task = sum(i.number for i in items if i.option in ("gpus-per-task", "tres-per-task"))
    mem = comp.effective_memory()
    mem_node = mem_cpu = mem_gpu = None
    if mem is not None and mem.value:
        mb = parse_mem_option(mem.value)
        mem_node = mb if mem.option == "mem" else None
        mem_cpu = mb if mem.option == "mem-per-cpu" else None
        mem_gpu = mb if mem.option == "mem-per-gpu" else None
    tv = comp.value("time")
    types = {i.gpu_type for i in items if i.gpu_type}
    request = JobRequest(
        nodes_min=nodes_min,
        nodes_max=nodes_max,
        ntasks=ntasks,
        cpus_per_task=cpt,
        cpus_min=max(1, ntasks * cpt),
        mem_per_node_mb=mem_node,
        mem_per_cpu_mb=mem_cpu,
        mem_per_gpu_mb=mem_gpu,
        gpus_per_node=per_node,
        gpus_per_job=per_job,
        gpus_per_task=per_task,
        gpu_type=next(iter(types)) if len(types) == 1 else None,
        constraint=comp.value("constraint"),
        time_limit_s=parse_time_option(tv) if tv else None,
        exclusive=comp.has("exclusive"),
    )
    return Submission(
        partitions=partitions,
        partition_source=None if part is None else part.source.value,
        gpu_items=tuple(items),
        request=request,
        account=comp.value("account"),
        qos=comp.value("qos"),
        array=comp.value("array"),
        hold=comp.has("hold"),
        begin=comp.value("begin"),
        dependency=comp.value("dependency"),
        test_only=comp.has("test-only"),
        parsable=comp.has("parsable"),
        clusters=comp.value("clusters"),
        reservation=comp.value("reservation"),
        nodelist=comp.value("nodelist"),
    )
