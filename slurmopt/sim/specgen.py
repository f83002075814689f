"""Generate the simulator's cluster specs from real data, reproducibly.

``scripts/bench/sim_make_specs.py`` calls these to write ``etc/clusters/*.toml``.

Job-type speed affinities come from Gavel's measured single-GPU throughputs
(26 job types on K80, P100 and V100). For a GPU type ``g`` that maps to a Gavel
class ``c`` (P100 -> p100, V100M16 / V100M32 -> v100, K80 -> k80)::

    speed[job_type][g] = gpu_speed[g] x r(job_type, c) / median over job types of r(., c)
    r(job_type, c)     = throughput(job_type, c) / throughput(job_type, v100)

so a typical job runs at ``gpu_speed[g]`` and a job type that Gavel measured
to be relatively faster (or slower) on that class keeps its measured ratio;
e.g. the recommendation models run about 2x faster on P100 than on V100.
``gpu_speed`` of a classed type is Gavel's median ratio to V100 (V100 = 1.0).
GPU types Gavel did not measure get no affinity and an assumed ``gpu_speed``
(documented in ``docs/simulator.md``): T4 0.5 (its FP32 peak is about half a
V100's), A10 1.0, and Alibaba's undisclosed G2 / G3 1.0.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slurmopt.sim.traces import AlibabaNode

GAVEL_CLASSES = ("k80", "p100", "v100")
ALIBABA_CLASS = {"P100": "p100", "V100M16": "v100", "V100M32": "v100"}
ASSUMED_SPEED = {"T4": 0.5, "A10": 1.0, "G2": 1.0, "G3": 1.0}
"""V100 = 1.0; speeds of GPU types Gavel did not measure (assumptions, see above)."""


def class_speed(gavel: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Median throughput ratio to V100 per Gavel class (v100 = 1.0)."""
    return {
        c: statistics.median(t[c] / t["v100"] for t in gavel.values() if c in t and "v100" in t)
        for c in GAVEL_CLASSES
    }


def affinities(
    gavel: Mapping[str, Mapping[str, float]],
    class_of: Mapping[str, str],
    gpu_speed: Mapping[str, float],
) -> dict[str, dict[str, float]]:
    """``job_type_speed`` for the GPU types in ``class_of`` (see the module docstring)."""
    med = class_speed(gavel)
    out: dict[str, dict[str, float]] = {}
    for jt, t in sorted(gavel.items()):
        row: dict[str, float] = {}
        for g, c in class_of.items():
            if c in t and "v100" in t:
                row[g] = round(gpu_speed[g] * (t[c] / t["v100"]) / med[c], 4)
        out[jt] = row
    return out


@dataclass(frozen=True, slots=True)
class _Group:
    first: int
    last: int
    cpus: int
    memory_mb: int
    gpus: int
    model: str


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node_number(name: str, fallback: int) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else fallback


def _node_groups(nodes: Sequence[AlibabaNode]) -> list[_Group]:
    """Runs of consecutive node numbers (``openb-node-<n>``) with the same shape."""
    groups: list[_Group] = []
    for pos, n in enumerate(nodes):
        i = _node_number(n.name, pos)
        shape = (int(n.cpus), n.memory_mb, n.gpus, n.model or "")
        if groups and (
            (groups[-1].cpus, groups[-1].memory_mb, groups[-1].gpus, groups[-1].model) == shape
            and groups[-1].last == i - 1
        ):
            g = groups[-1]
            groups[-1] = _Group(g.first, i, g.cpus, g.memory_mb, g.gpus, g.model)
        else:
            groups.append(_Group(i, i, *shape))
    return groups


def _hostlist(prefix: str, first: int, last: int, width: int) -> str:
    if first == last:
        return f"{prefix}{first:0{width}d}"
    return f"{prefix}[{first:0{width}d}-{last:0{width}d}]"


def _speed_tables(gpu_speed: Mapping[str, float], jts: Mapping[str, Mapping[str, float]]) -> str:
    lines = ["[gpu_speed]"]
    lines += [f"{k} = {v}" for k, v in sorted(gpu_speed.items())]
    for jt, row in sorted(jts.items()):
        lines.append("")
        lines.append(f"[job_type_speed.{_toml_str(jt)}]")
        lines += [f"{k} = {v}" for k, v in sorted(row.items())]
    return "\n".join(lines) + "\n"


def thin_nodes(nodes: Sequence[AlibabaNode], every: int) -> list[AlibabaNode]:
    """Every ``every``-th node of each GPU model (and of the CPU nodes), at least one each."""
    out: list[AlibabaNode] = []
    seen: dict[str | None, int] = {}
    for n in nodes:
        i = seen.get(n.model, 0)
        seen[n.model] = i + 1
        if i % every == 0:
            out.append(n)
    return out


def alibaba_spec(
    nodes: Sequence[AlibabaNode],
    gavel: Mapping[str, Mapping[str, float]],
    source: str = "",
    *,
    name: str = "alibaba-gpu-2023",
) -> str:
    """The Alibaba GPU 2023 cluster: its real node list, one partition per GPU model.

    Nodes keep their names (``openb-node-<n>``); CPU-only nodes form partition
    ``cpu``; each GPU model (P100, T4, ...) a partition of its lowercase name.
    Reference GPU type: G2 (71 % of the GPUs, so the most likely GPU a recorded
    runtime ran on).
    """
    med = class_speed(gavel)
    models = sorted({n.model for n in nodes if n.model})
    gpu_speed = {m: round(med[ALIBABA_CLASS[m]], 4) for m in models if m in ALIBABA_CLASS}
    gpu_speed.update({m: ASSUMED_SPEED.get(m, 1.0) for m in models if m not in ALIBABA_CLASS})
    jts = affinities(gavel, {m: c for m, c in ALIBABA_CLASS.items() if m in models}, gpu_speed)
    out = [
        "# Generated by scripts/bench/sim_make_specs.py from the Alibaba GPU 2023 node list",
        f"# ({source or 'openb_node_list_all_node.csv'}) and Gavel's measured throughputs.",
        "# Do not edit by hand: regenerate.",
        f'name = "{name}"',
        f'description = "Alibaba GPU 2023 production cluster: {len(nodes)} nodes, '
        f'{sum(n.gpus for n in nodes)} GPUs, one partition per GPU model"',
        'reference_gpu_type = "G2"',
        "",
    ]
    by_part: dict[str, list[str]] = {}
    for g in _node_groups(nodes):
        host = _hostlist("openb-node-", g.first, g.last, 4)
        out += ["[[nodes]]", f'name = "{host}"', f"cpus = {g.cpus}", f"memory_mb = {g.memory_mb}"]
        if g.gpus:
            out += [f"gpus = {g.gpus}", f'gpu_type = "{g.model}"']
        out.append("")
        by_part.setdefault(g.model.lower() if g.model else "cpu", []).append(host)
    for pname, hosts in sorted(by_part.items()):
        out += [
            "[[partitions]]",
            f'name = "{pname}"',
            "nodes = [" + ", ".join(map(_toml_str, hosts)),
        ]
        out[-1] += "]"
        out.append("")
    return "\n".join(out) + "\n" + _speed_tables(gpu_speed, jts)


def kth_hetero_spec(gavel: Mapping[str, Mapping[str, float]], *, fast_first: bool = False) -> str:
    """KTH-SP2's 100 processors become 100 K80 GPUs, next to newer P100 and V100 nodes.

    25 x 4 K80 (the original machine), 8 x 4 P100, 8 x 4 V100; each SWF
    processor is one GPU (:func:`slurmopt.sim.workload.as_gpu_jobs`). Reference
    GPU type: k80 (the recorded runtimes are the original machine's).
    Partitions are listed K80 first, or with ``fast_first`` V100 first (the
    order ``sbatch -p`` over every partition, and so ``slurm-multi``, follows).
    """
    med = class_speed(gavel)
    gpu_speed = {c: round(med[c], 4) for c in GAVEL_CLASSES}
    jts = affinities(gavel, {c: c for c in GAVEL_CLASSES}, gpu_speed)
    parts = (("k80", 25), ("p100", 8), ("v100", 8))
    name_sfx = "-fastfirst" if fast_first else ""
    out = [
        "# Generated by scripts/bench/sim_make_specs.py: KTH-SP2 mapped onto a heterogeneous",
        "# GPU cluster (1 SWF processor = 1 GPU), speeds from Gavel's measured throughputs.",
        "# Partitions listed " + ("fastest GPU first." if fast_first else "K80 first."),
        f'name = "kth-sp2-hetero{name_sfx}"',
        'description = "KTH-SP2 on 25x4 K80 + 8x4 P100 + 8x4 V100 GPUs"',
        'reference_gpu_type = "k80"',
        "",
    ]
    for name, n in parts:
        out += [
            "[[nodes]]",
            f'name = "{name}-[01-{n:02d}]"',
            "cpus = 32",
            "memory_mb = 256000",
            "gpus = 4",
            f'gpu_type = "{name}"',
            "",
        ]
    for name, n in reversed(parts) if fast_first else parts:
        out += ["[[partitions]]", f'name = "{name}"', f'nodes = ["{name}-[01-{n:02d}]"]', ""]
    return "\n".join(out) + "\n" + _speed_tables(gpu_speed, jts)
