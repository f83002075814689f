"""The simulator's view of a cluster spec: flat node arrays, partitions, speeds.

Built once from a :class:`slurmopt.clusterspec.ClusterSpec`. Resources are kept
as integers: CPUs in milli-CPUs, memory in MiB, GPUs as whole devices. A node
that belongs to several partitions exists once (its free resources are shared).

Speed convention (see ``docs/simulator.md``): a trace runtime is the runtime on
the spec's ``reference_gpu_type`` (speed 1.0 when the spec names none). On a
partition whose GPUs have speed ``s`` for the job's type, the runtime is
``runtime x s(reference) / s``. ``s`` is ``job_type_speed[type][gpu]`` when the
spec has it, else ``gpu_speed[gpu]``, else 1.0; a partition with several GPU
types runs at its slowest type (or ``partition_speed`` when set for a job type
without its own entry). Jobs without GPUs run at speed 1.0 everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slurmopt.clusterspec import ClusterSpec


@dataclass(slots=True)
class SimPartition:
    """One partition: node indices and static facts used by the scheduler."""

    index: int
    name: str
    nodes: tuple[int, ...]
    node_set: frozenset[int]
    gpu_types: tuple[str, ...]
    max_cpus_per_node: int
    """milli-CPUs of the largest node."""
    max_gpus_per_node: int
    max_mem_per_node: int
    max_time_s: int | None
    max_nodes: int | None
    priority_tier: int
    up: bool
    total_cpus: int = 0
    total_gpus: int = 0
    free_cpus: int = 0
    free_gpus: int = 0
    cpu_free_nodes: dict[int, None] = field(default_factory=dict)
    """Nodes with free CPUs (insertion-ordered; first-fit scans only these)."""
    gpu_free_nodes: dict[int, None] = field(default_factory=dict)
    """Nodes with free GPUs."""

    @property
    def has_gpus(self) -> bool:
        return self.max_gpus_per_node > 0


@dataclass(slots=True)
class SimCluster:
    """Flat, mutable node state plus the partitions over it."""

    spec: ClusterSpec
    names: list[str]
    cap_cpu: list[int]
    cap_gpu: list[int]
    cap_mem: list[int]
    gpu_type: list[str]
    free_cpu: list[int]
    free_gpu: list[int]
    free_mem: list[int]
    partitions: list[SimPartition]
    node_parts: list[tuple[int, ...]]
    """Partition indices each node belongs to."""
    by_name: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: ClusterSpec) -> SimCluster:
        names = [n.name for n in spec.nodes]
        index = {n: i for i, n in enumerate(names)}
        cap_cpu = [n.cpus * 1000 for n in spec.nodes]
        cap_gpu = [n.gpus for n in spec.nodes]
        cap_mem = [n.memory_mb for n in spec.nodes]
        gtype = [n.gpu_type if n.gpus > 0 else "" for n in spec.nodes]
        parts: list[SimPartition] = []
        node_parts: list[list[int]] = [[] for _ in names]
        for pi, p in enumerate(spec.partitions):
            idx = tuple(index[n] for n in p.nodes)
            for i in idx:
                node_parts[i].append(pi)
            types = tuple(dict.fromkeys(gtype[i] for i in idx if cap_gpu[i] > 0))
            parts.append(
                SimPartition(
                    index=pi,
                    name=p.name,
                    nodes=idx,
                    node_set=frozenset(idx),
                    gpu_types=types,
                    max_cpus_per_node=max(cap_cpu[i] for i in idx),
                    max_gpus_per_node=max(cap_gpu[i] for i in idx),
                    max_mem_per_node=max(cap_mem[i] for i in idx),
                    max_time_s=p.max_time_s,
                    max_nodes=p.max_nodes,
                    priority_tier=p.priority_tier,
                    up=p.state == "UP",
                    total_cpus=sum(cap_cpu[i] for i in idx),
                    total_gpus=sum(cap_gpu[i] for i in idx),
                    free_cpus=sum(cap_cpu[i] for i in idx),
                    free_gpus=sum(cap_gpu[i] for i in idx),
                    cpu_free_nodes={i: None for i in idx if cap_cpu[i] > 0},
                    gpu_free_nodes={i: None for i in idx if cap_gpu[i] > 0},
                )
            )
        return cls(
            spec=spec,
            names=names,
            cap_cpu=cap_cpu,
            cap_gpu=cap_gpu,
            cap_mem=cap_mem,
            gpu_type=gtype,
            free_cpu=list(cap_cpu),
            free_gpu=list(cap_gpu),
            free_mem=list(cap_mem),
            partitions=parts,
            node_parts=[tuple(x) for x in node_parts],
            by_name={p.name: p.index for p in parts},
        )

    # -- capacity -------------------------------------------------------------------
    @property
    def used_nodes(self) -> list[int]:
        """Nodes that belong to at least one partition."""
        return [i for i, ps in enumerate(self.node_parts) if ps]

    @property
    def total_cpus(self) -> float:
        return sum(self.cap_cpu[i] for i in self.used_nodes) / 1000.0

    @property
    def total_gpus(self) -> int:
        return sum(self.cap_gpu[i] for i in self.used_nodes)

    def take(self, nodes: list[int], cpu: int, gpu: int, mem: int) -> None:
        """Allocate ``cpu``/``gpu``/``mem`` on each of ``nodes``."""
        fc, fg, fm, parts = self.free_cpu, self.free_gpu, self.free_mem, self.partitions
        for i in nodes:
            fc[i] -= cpu
            fg[i] -= gpu
            fm[i] -= mem
            if fc[i] < 0 or fg[i] < 0 or fm[i] < 0:
                raise AssertionError(f"node {self.names[i]} over capacity")
            for p in self.node_parts[i]:
                part = parts[p]
                part.free_cpus -= cpu
                part.free_gpus -= gpu
                if fc[i] == 0:
                    part.cpu_free_nodes.pop(i, None)
                if fg[i] == 0:
                    part.gpu_free_nodes.pop(i, None)

    def give(self, nodes: list[int], cpu: int, gpu: int, mem: int) -> None:
        """Release what :meth:`take` allocated."""
        fc, fg, fm, parts = self.free_cpu, self.free_gpu, self.free_mem, self.partitions
        for i in nodes:
            fc[i] += cpu
            fg[i] += gpu
            fm[i] += mem
            for p in self.node_parts[i]:
                part = parts[p]
                part.free_cpus += cpu
                part.free_gpus += gpu
                if cpu and fc[i] == cpu:
                    part.cpu_free_nodes[i] = None
                if gpu and fg[i] == gpu:
                    part.gpu_free_nodes[i] = None

    # -- speed ----------------------------------------------------------------------
    def type_speed(self, job_type: str | None, gpu_type: str) -> float:
        """Speed of ``job_type`` on ``gpu_type`` (see the module docstring)."""
        spec = self.spec
        if job_type is not None:
            jt = spec.job_type_speed.get(job_type)
            if jt is not None and gpu_type in jt:
                return jt[gpu_type]
        return spec.gpu_speed.get(gpu_type, 1.0)

    def reference_speed(self, job_type: str | None) -> float:
        ref = self.spec.reference_gpu_type
        return self.type_speed(job_type, ref) if ref else 1.0

    def partition_speed(self, job_type: str | None, part: SimPartition) -> float:
        """Speed of a GPU job of ``job_type`` in ``part`` (its slowest GPU type)."""
        if not part.gpu_types:
            return 1.0
        has_own = job_type is not None and job_type in self.spec.job_type_speed
        if not has_own and part.name in self.spec.partition_speed:
            return self.spec.partition_speed[part.name]
        return min(self.type_speed(job_type, t) for t in part.gpu_types)
