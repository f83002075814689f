"""The running jobs' availability profiles, kept between the optimizer policy's decisions.

:func:`slurmopt.optimize.schedule.base_profiles` builds them from a snapshot:
per node, free now, then each running job's share released at its expected
end. Rebuilt at every decision that follows a start or an end, that is most of
an optsub replay at high load (issue 16: 59 % of an Alibaba replay at load
x100). Here only the nodes where a job started or ended since the last call
are rebuilt, with the same per-job share
(:func:`~slurmopt.optimize.schedule.running_share`), per-node use
(:func:`~slurmopt.optimize.schedule.node_used`) and steps
(:func:`~slurmopt.optimize.profile.node_steps`) as ``base_profiles``. On the
other nodes only the first breakpoint moves to now: their running jobs are the
same, each still ends after now (a job whose expected end has come has ended
in the simulator: expected ends are time limits or exact runtimes), so
``base_profiles`` would give the same steps from a later origin. Nodes whose
steps depend on now anyway (a release within a second of now, allocation no
running job explains) are rebuilt every time.

Valid only where a running job's expected end does not move with now: no
predictions for running jobs, no ``limit_ratio`` (the policy does not use it then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from slurmopt.model import Job, Node
from slurmopt.optimize.config import OptimizeConfig
from slurmopt.optimize.profile import Profiles, node_steps
from slurmopt.optimize.schedule import node_used, running_share

_Share = tuple[list[int], int, int, int, float]


class RunningBase:
    """``base_profiles`` of the running jobs, updated by difference (see the module docstring)."""

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        self.index = {n.name: i for i, n in enumerate(nodes)}
        self.caps = [
            (n.cpus, n.memory_mb, n.gpu_total) if n.available else (0, 0, 0) for n in nodes
        ]
        self.shares: dict[int, _Share | None] = {}
        self.on_node: list[dict[int, None]] = [{} for _ in nodes]
        self.prof: Profiles | None = None
        self.rebuilt = 0
        """Nodes rebuilt so far (for tests and counters)."""

    def update(
        self,
        now: float,
        running: Mapping[int, Any],
        job_of: Callable[[int], Job],
        node_of: Callable[[int], Node],
        cfg: OptimizeConfig,
    ) -> Profiles:
        """The profiles at ``now`` for the jobs ``running`` (ids; ``job_of`` gives each
        one's snapshot record, ``node_of`` a node's current snapshot record)."""
        n_nodes = len(self.caps)
        if self.prof is None:
            self.prof = Profiles(
                [[now] for _ in range(n_nodes)],
                [[0] for _ in range(n_nodes)],
                [[0] for _ in range(n_nodes)],
                [[0] for _ in range(n_nodes)],
                [c[0] for c in self.caps],
                [c[1] for c in self.caps],
                [c[2] for c in self.caps],
            )
            dirty = set(range(n_nodes))
        else:
            dirty = set()
        shares = self.shares
        dirty |= self._changed(now, running, job_of, cfg)
        prof = self.prof
        times, cpu, mem, gpu = prof.times, prof.cpu, prof.mem, prof.gpu
        soon = now + 1.0
        for n in range(n_nodes):
            if n in dirty:
                continue
            ts = times[n]
            if (len(ts) > 1 and ts[1] <= soon) or (cpu[n][-1], mem[n][-1], gpu[n][-1]) != self.caps[
                n
            ]:
                dirty.add(n)
            else:
                ts[0] = now
        for n in dirty:
            rel = []
            sh = [0, 0, 0]
            for j in self.on_node[n]:
                s = shares[j]
                assert s is not None
                _, c, m, g, end = s
                sh[0] += c
                sh[1] += m
                sh[2] += g
                rel.append((max(end, soon), c, m, g))  # as running_share at now
            ts, cs, ms, gs = node_steps(now, self.caps[n], node_used(node_of(n), sh), rel)
            times[n], cpu[n], mem[n], gpu[n] = ts, cs, ms, gs
        self.rebuilt += len(dirty)
        return prof

    def _changed(
        self,
        now: float,
        running: Mapping[int, Any],
        job_of: Callable[[int], Job],
        cfg: OptimizeConfig,
    ) -> set[int]:
        """Take in the jobs that ended or started since the last call; the nodes they touch."""
        dirty: set[int] = set()
        shares = self.shares
        for j in shares.keys() - running.keys():
            got = shares.pop(j)
            if got is not None:
                for n in got[0]:
                    del self.on_node[n][j]
                dirty.update(got[0])
        for j in running.keys() - shares.keys():
            got = running_share(job_of(j), self.index, cfg, now, {})
            shares[j] = got
            if got is not None:
                for n in got[0]:
                    self.on_node[n][j] = None
                dirty.update(got[0])
        return dirty
