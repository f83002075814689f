"""Availability profiles: free CPUs, memory and GPUs of each node over time.

One profile per node (never per partition), so nodes shared by several
partitions are counted once. A profile is a step function kept as parallel
lists: segment ``i`` covers ``[times[i], times[i + 1])`` and the last segment
runs forever. The first breakpoint is "now".

GPUs are one counter per node (the node's total); nodes mixing GPU types are
rare in Slurm clusters, and eligibility already restricts a typed request to
nodes that have its type.

Pure Python on purpose (optsub builds problems on its submit path): the hot
loops are :func:`earliest_on_node` and :func:`reserve`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

from slurmopt.optimize.eligibility import WHOLE

INF = math.inf


def node_steps(
    now: float,
    cap: tuple[int, int, int],
    used: tuple[int, int, int],
    releases: Iterable[tuple[float, int, int, int]],
) -> tuple[list[float], list[int], list[int], list[int]]:
    """One node's step functions (:meth:`Profiles.build`): ``releases`` are
    ``(time, cpus, mem, gpus)`` with ``time >= now``."""
    cc, cm, cg = cap
    uc, um, ug = used
    fc, fm, fg = max(0, cc - uc), max(0, cm - um), max(0, cg - ug)
    ts, cs, ms, gs = [float(now)], [fc], [fm], [fg]
    for t, c, m, g in sorted(releases):
        fc, fm, fg = min(cc, fc + c), min(cm, fm + m), min(cg, fg + g)
        if t <= ts[-1]:
            cs[-1], ms[-1], gs[-1] = fc, fm, fg
        else:
            ts.append(t)
            cs.append(fc)
            ms.append(fm)
            gs.append(fg)
    if (cs[-1], ms[-1], gs[-1]) != (cc, cm, cg):
        # allocation no visible job explains: freed right after the last release
        ts.append(ts[-1] + 1.0)
        cs.append(cc)
        ms.append(cm)
        gs.append(cg)
    return ts, cs, ms, gs


class Profiles:
    """Per-node step functions of free resources (mutable; copy before changing).

    A plain class with slots (what ``@dataclass(slots=True)`` made, without its
    0.3 ms of class creation on optsub's submit path).
    """

    __slots__ = ("cap_cpu", "cap_gpu", "cap_mem", "cpu", "gpu", "mem", "times")

    def __init__(
        self,
        times: list[list[float]],
        cpu: list[list[int]],
        mem: list[list[int]],
        gpu: list[list[int]],
        cap_cpu: list[int],
        cap_mem: list[int],
        cap_gpu: list[int],
    ) -> None:
        self.times = times
        self.cpu = cpu
        self.mem = mem
        self.gpu = gpu
        self.cap_cpu = cap_cpu
        self.cap_mem = cap_mem
        self.cap_gpu = cap_gpu

    def _fields(self) -> tuple[Any, ...]:
        return (self.times, self.cpu, self.mem, self.gpu, self.cap_cpu, self.cap_mem, self.cap_gpu)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profiles) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def __repr__(self) -> str:
        names = ("times", "cpu", "mem", "gpu", "cap_cpu", "cap_mem", "cap_gpu")
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"Profiles({inner})"

    @classmethod
    def build(
        cls,
        now: float,
        caps: Sequence[tuple[int, int, int]],
        used: Sequence[tuple[int, int, int]],
        releases: Iterable[tuple[int, float, int, int, int]],
    ) -> Profiles:
        """Profiles from capacities, current use and future releases.

        Args:
            now: the first breakpoint.
            caps: per node ``(cpus, mem, gpus)``; unavailable nodes pass zeros.
            used: per node amounts in use now.
            releases: ``(node, time, cpus, mem, gpus)`` freed at ``time`` (> now).
        """
        per_node: list[list[tuple[float, int, int, int]]] = [[] for _ in caps]
        for n, t, c, m, g in releases:
            per_node[n].append((max(t, now), c, m, g))
        times: list[list[float]] = []
        cpu: list[list[int]] = []
        mem: list[list[int]] = []
        gpu: list[list[int]] = []
        for n, cap in enumerate(caps):
            ts, cs, ms, gs = node_steps(now, cap, used[n], per_node[n])
            times.append(ts)
            cpu.append(cs)
            mem.append(ms)
            gpu.append(gs)
        return cls(
            times,
            cpu,
            mem,
            gpu,
            [c[0] for c in caps],
            [c[1] for c in caps],
            [c[2] for c in caps],
        )

    def copy(self, nodes: Iterable[int] | None = None) -> Profiles:
        """A copy whose lists for ``nodes`` (default all) may be changed freely."""
        if nodes is None:
            return Profiles(
                [t[:] for t in self.times],
                [c[:] for c in self.cpu],
                [m[:] for m in self.mem],
                [g[:] for g in self.gpu],
                self.cap_cpu,
                self.cap_mem,
                self.cap_gpu,
            )
        out = Profiles(
            self.times[:],
            self.cpu[:],
            self.mem[:],
            self.gpu[:],
            self.cap_cpu,
            self.cap_mem,
            self.cap_gpu,
        )
        for n in nodes:
            out.times[n] = self.times[n][:]
            out.cpu[n] = self.cpu[n][:]
            out.mem[n] = self.mem[n][:]
            out.gpu[n] = self.gpu[n][:]
        return out

    def demand(self, n: int, cpu: int, mem: int, gpu: int) -> tuple[int, int, int]:
        """Resolve :data:`WHOLE` amounts against node ``n``'s capacity."""
        return (
            self.cap_cpu[n] if cpu == WHOLE else cpu,
            self.cap_mem[n] if mem == WHOLE else mem,
            self.cap_gpu[n] if gpu == WHOLE else gpu,
        )

    def earliest_on_node(
        self, n: int, t0: float, dur: float, c: int, m: int, g: int, bound: float = INF
    ) -> float:
        """Earliest start >= ``t0`` and < ``bound`` when node ``n`` fits the demand for ``dur``.

        Returns ``inf`` when there is none before ``bound``. Demands must be resolved.
        """
        times = self.times[n]
        fc, fm, fg = self.cpu[n], self.mem[n], self.gpu[n]
        last = len(times)
        if t0 <= times[0]:
            i, s = 0, times[0]
        else:
            i, s = bisect_right(times, t0) - 1, t0
        while s < bound:
            end = s + dur
            k = i
            while fc[k] >= c and fm[k] >= m and fg[k] >= g:
                k += 1
                if k == last or times[k] >= end:
                    return s
            i = k + 1
            if i >= last:
                return INF
            s = times[i]
        return INF

    def fits_at(self, n: int, s: float, dur: float, c: int, m: int, g: int) -> bool:
        """True when node ``n`` fits the demand over ``[s, s + dur)``."""
        times = self.times[n]
        fc, fm, fg = self.cpu[n], self.mem[n], self.gpu[n]
        k = max(0, bisect_right(times, s) - 1)
        end = s + dur
        while k < len(times) and (k == 0 or times[k] < end):
            if fc[k] < c or fm[k] < m or fg[k] < g:
                return False
            k += 1
        return True

    def find_start(  # noqa: PLR0913  the demand's parts, the bound and the caller's search bounds
        self,
        nodes: Sequence[int],
        k: int,
        t0: float,
        dur: float,
        cpu: int,
        mem: int,
        gpu: int,
        bound: float = INF,
        lb: dict[int, float] | None = None,
    ) -> tuple[float, list[int]]:
        """Earliest start >= ``t0`` (and < ``bound``) when ``k`` of ``nodes`` fit; and which.

        Single-node jobs take the first node (in ``nodes`` order) with the
        earliest start. Multi-node jobs look for the first time at which ``k``
        nodes all fit for the whole duration. Returns ``(inf, [])`` when none.
        """
        whole = WHOLE in (cpu, mem, gpu)
        if k == 1 and not whole:
            return self._single(nodes, t0, dur, cpu, mem, gpu, bound, lb)
        if k == 1:
            best, pick = bound, -1
            for n in nodes:
                c, m, g = self.demand(n, cpu, mem, gpu) if whole else (cpu, mem, gpu)
                e = self.earliest_on_node(n, t0, dur, c, m, g, best)
                if e < best:
                    best, pick = e, n
                    if e <= t0:
                        break
            return (best, [pick]) if pick >= 0 else (INF, [])
        if len(nodes) < k:
            return INF, []
        return self._multi(nodes, k, t0, dur, cpu, mem, gpu, bound)

    def _multi(
        self,
        nodes: Sequence[int],
        k: int,
        t0: float,
        dur: float,
        cpu: int,
        mem: int,
        gpu: int,
        bound: float,
    ) -> tuple[float, list[int]]:
        """:meth:`find_start` for ``k`` > 1 nodes (or whole-node demands).

        From ``t``, every node's earliest start; the ``k``-th smallest, ``tk``,
        is the first time ``k`` nodes could fit. A node whose earliest start is
        ``tk`` fits then, one whose earliest start is later does not, the others
        are checked; with fewer than ``k``, on from the next breakpoint after ``tk``.
        """
        whole = WHOLE in (cpu, mem, gpu)
        dem = [self.demand(n, cpu, mem, gpu) for n in nodes] if whole else None
        eon, fits = self.earliest_on_node, self.fits_at
        all_times = self.times
        t = t0
        while t < bound:
            if dem is None:
                starts = [eon(n, t, dur, cpu, mem, gpu) for n in nodes]
            else:
                starts = [eon(n, t, dur, *d) for n, d in zip(nodes, dem, strict=True)]
            tk = sorted(starts)[k - 1]
            if tk >= bound:
                return INF, []
            fit: list[int] = []
            for x, n in enumerate(nodes):
                s = starts[x]
                if s == tk:
                    fit.append(n)
                elif s < tk:
                    c, m, g = (cpu, mem, gpu) if dem is None else dem[x]
                    if fits(n, tk, dur, c, m, g):
                        fit.append(n)
            if len(fit) >= k:
                return tk, fit[:k]
            nxt = INF
            for n in nodes:
                ts = all_times[n]
                j = bisect_right(ts, tk)
                if j < len(ts) and ts[j] < nxt:
                    nxt = ts[j]
            t = nxt
        return INF, []

    def _single(  # noqa: PLR0912  one scan per node, bounded on both sides
        self,
        nodes: Sequence[int],
        t0: float,
        dur: float,
        c: int,
        m: int,
        g: int,
        bound: float,
        lb: dict[int, float] | None = None,
    ) -> tuple[float, list[int]]:
        """:meth:`find_start` for one node. ``lb``: per node, a time before which (from
        ``t0``) no segment has the demand free, even for an instant; read and updated
        (valid while the profile only gets reservations: free amounts only go down)."""
        best, pick = bound, -1
        all_times, all_c, all_m, all_g = self.times, self.cpu, self.mem, self.gpu
        for n in nodes:
            times = all_times[n]
            fc, fm, fg = all_c[n], all_m[n], all_g[n]
            last = len(times)
            start = t0
            if lb is not None:
                h = lb.get(n, t0)
                if h >= best:
                    continue
                start = h if h > t0 else t0
            if start <= times[0]:
                i, s = 0, times[0]
            else:
                i, s = bisect_right(times, start) - 1, start
            ok = -1.0
            while s < best:
                end = s + dur
                k = i
                if ok < 0.0 and fc[k] >= c and fm[k] >= m and fg[k] >= g:
                    ok = s
                while fc[k] >= c and fm[k] >= m and fg[k] >= g:
                    k += 1
                    if k == last or times[k] >= end:
                        best, pick = s, n
                        break
                else:
                    i = k + 1
                    if i >= last:
                        s = INF
                        break
                    s = times[i]
                    continue
                break
            if lb is not None:
                lb[n] = ok if ok >= 0.0 else s
            if pick >= 0 and best <= t0:
                break
        return (best, [pick]) if pick >= 0 else (INF, [])

    def reserve(self, n: int, s: float, dur: float, c: int, m: int, g: int) -> None:
        """Take the (resolved) demand from node ``n`` over ``[s, s + dur)``."""
        i = self._split(n, s)
        j = self._split(n, s + dur)
        fc, fm, fg = self.cpu[n], self.mem[n], self.gpu[n]
        for x in range(i, j):
            fc[x] -= c
            fm[x] -= m
            fg[x] -= g

    def _split(self, n: int, t: float) -> int:
        times = self.times[n]
        i = bisect_left(times, t)
        if i < len(times) and times[i] == t:
            return i
        if i == 0:
            raise ValueError("cannot reserve before the profile starts")
        times.insert(i, t)
        for lst in (self.cpu[n], self.mem[n], self.gpu[n]):
            lst.insert(i, lst[i - 1])
        return i

    def min_free(self, n: int) -> tuple[int, int, int]:
        """Lowest free amounts of node ``n`` over all time (negative: overbooked)."""
        return min(self.cpu[n]), min(self.mem[n]), min(self.gpu[n])
