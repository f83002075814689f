"""The static generalized assignment form of a time-aware :class:`Problem`.

Imported lazily by :meth:`Problem.to_static` (it loads :mod:`slurmopt.optimize.static`,
which imports numpy).

* cost[j][p] = weight x (start if alone + runtime on p - submit) + move
  penalty, divided by the total weight (so it is on the scale of the
  time-aware objective); "alone" = on the cluster with only the running jobs;
* kinds: nodes, CPUs, memory, and GPUs per GPU type, counted in
  resource-seconds over a horizon H: capacity[k][p] = capacity of p's nodes x
  H minus what running jobs still hold; demand[k][j][p] = per-node amount x
  node count x runtime on p;
* H = the last completion of the earliest-start greedy plan, so Slurm's own
  plan is (nearly) feasible in the static form;
* a node shared by several partitions gives each an equal share of its
  capacity (counted once overall).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slurmopt.optimize import schedule as sched
from slurmopt.optimize.profile import INF, Profiles

if TYPE_CHECKING:
    from slurmopt.optimize.problem import Problem
    from slurmopt.optimize.static import StaticProblem


def to_static(problem: Problem) -> StaticProblem:  # noqa: PLR0912  one pass over the jobs and resource kinds of the static form
    """Build the :class:`~slurmopt.optimize.static.StaticProblem` of ``problem``."""
    from slurmopt.optimize.static import StaticProblem

    snap = problem.snapshot
    base = problem.base
    now = problem.now
    gtypes = sorted({t for n in snap.nodes for t in n.gpus})
    kinds = ["nodes", "cpus", "mem", *(f"gpu:{t}" for t in gtypes)]
    kidx = {k: i for i, k in enumerate(kinds)}
    es_genes = problem.initial_assignments()["earliest-start"]
    es = sched.run(problem, problem.parts_of(es_genes))
    horizon = (
        max(
            (
                s + problem.options[o][p].runtime
                for o, (s, p) in enumerate(zip(es.starts, es.parts, strict=True))
            ),
            default=now + 1.0,
        )
        - now
    )
    horizon = max(horizon, 1.0)
    names = {n.name: i for i, n in enumerate(snap.nodes)}
    share = [0] * len(snap.nodes)
    for part in problem.partitions:
        for name in part.nodes:
            if name in names:
                share[names[name]] += 1
    cap = [[0.0] * problem.n_parts for _ in kinds]
    for pi, part in enumerate(problem.partitions):
        for name in part.nodes:
            n = names.get(name)
            if n is None or base.cap_cpu[n] == 0:
                continue
            f = 1.0 / share[n]
            node = snap.nodes[n]
            busy = _busy(base, n, now + horizon)
            cap[0][pi] += f * horizon
            cap[1][pi] += f * (base.cap_cpu[n] * horizon - busy[0])
            cap[2][pi] += f * (base.cap_mem[n] * horizon - busy[1])
            total_g = base.cap_gpu[n]
            for t, cnt in node.gpus.items():
                if total_g:
                    frac = cnt / total_g
                    cap[kidx[f"gpu:{t}"]][pi] += f * (cnt * horizon - frac * busy[2])
    nv = problem.n_jobs
    cost = [[INF] * problem.n_parts for _ in range(nv)]
    demand = [[[0.0] * problem.n_parts for _ in range(nv)] for _ in kinds]
    for g, o in enumerate(problem.var_pos):
        for p, opt in problem.options[o].items():
            s, _ = sched.place(base, opt, problem.t0[o])
            term, _, pen = sched.contribution(problem, o, p, s)
            cost[g][p] = (term + pen) / problem.total_weight
            n0 = opt.nodes[0]
            c, m, gg = base.demand(n0, opt.cpu, opt.mem, opt.gpu)
            work = opt.n_nodes * opt.runtime
            demand[0][g][p] = work
            demand[1][g][p] = c * work
            demand[2][g][p] = m * work
            if gg and opt.gpu_type is not None and f"gpu:{opt.gpu_type}" in kidx:
                demand[kidx[f"gpu:{opt.gpu_type}"]][g][p] = gg * work
    for k in range(len(kinds)):
        for p in range(problem.n_parts):
            cap[k][p] = max(cap[k][p], 0.0)
    return StaticProblem(
        cost, demand, cap, kinds=kinds, part_names=[p.name for p in problem.partitions]
    )


def _busy(base: Profiles, n: int, until: float) -> tuple[float, float, float]:
    """Resource-seconds node ``n`` is held by running jobs before ``until``."""
    ts = base.times[n]
    out = [0.0, 0.0, 0.0]
    for i in range(len(ts)):
        end = min(ts[i + 1] if i + 1 < len(ts) else until, until)
        dt = max(0.0, end - ts[i])
        out[0] += (base.cap_cpu[n] - base.cpu[n][i]) * dt
        out[1] += (base.cap_mem[n] - base.mem[n][i]) * dt
        out[2] += (base.cap_gpu[n] - base.gpu[n][i]) * dt
    return out[0], out[1], out[2]
