"""Repair for the static form: move jobs out of overflowing partitions, cheaply.

Split from :mod:`slurmopt.optimize.static` (size). Rounds over the
overflowing partitions, worst first; in each, jobs leave for partitions where
they fit, cheapest cost per unit of overflow relieved first; when none fits,
a swap with a job elsewhere, then a two-move ejection chain, then a move that
shrinks the total overflow. Total overflow never grows, so it terminates;
it is best effort (the result may stay infeasible on very tight instances).
Uses the problem's list copies of its arrays (``_cost_l``, ``_dem_l``,
``_cap_l``): pure Python, no numpy in the loops.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from slurmopt.optimize.static import _TOL, _over

if TYPE_CHECKING:
    from slurmopt.optimize.static import StaticProblem

log = logging.getLogger(__name__)


def _fits(prob: StaticProblem, load: list[list[float]], j: int, q: int) -> bool:
    dem, cap = prob._dem_l, prob._cap_l
    return all(
        load[k][q] + dem[k][j][q] <= cap[k][q] + _TOL * (1.0 + abs(cap[k][q]))
        for k in range(prob.n_kinds)
    )


def _rel_over(prob: StaticProblem, load: list[list[float]], q: int) -> float:
    return sum(
        _over(load[k][q], prob._cap_l[k][q]) / max(prob._cap_l[k][q], 1e-12)
        for k in range(prob.n_kinds)
    )


def repair(prob: StaticProblem, a: list[int]) -> list[int]:
    """See :meth:`StaticProblem.repair` (changes and returns ``a``)."""
    cost = prob._cost_l
    for j, g in enumerate(a):
        if not (0 <= g < prob.n_parts) or not math.isfinite(cost[j][g]):
            a[j] = min(prob._choices[j], key=cost[j].__getitem__)
    load: list[list[float]] = prob.loads(a).tolist()
    members: list[set[int]] = [set() for _ in range(prob.n_parts)]
    for j, g in enumerate(a):
        members[g].add(j)
    for _ in range(2 * prob.n_parts + 10):
        todo = sorted(
            (q for q in range(prob.n_parts) if _rel_over(prob, load, q) > 0.0),
            key=lambda q: (-_rel_over(prob, load, q), q),
        )
        if not todo:
            break
        progress = False
        for p in todo:
            progress |= _relieve(prob, a, load, members, p)
        if not progress:
            log.debug("repair: overflow left in %d partitions; no relieving move", len(todo))
            break
    return a


def _move(
    prob: StaticProblem,
    a: list[int],
    load: list[list[float]],
    members: list[set[int]],
    moves: Sequence[tuple[int, int, int]],
) -> None:
    dem = prob._dem_l
    for j, src, q in moves:
        for k in range(prob.n_kinds):
            load[k][src] -= dem[k][j][src]
            load[k][q] += dem[k][j][q]
        members[src].discard(j)
        members[q].add(j)
        a[j] = q


def _relieve(  # noqa: PLR0912  three repair moves tried in order (cheapest move, ejection chain, overflow shrink)
    prob: StaticProblem,
    a: list[int],
    load: list[list[float]],
    members: list[set[int]],
    p: int,
) -> bool:
    """Move jobs out of ``p`` until it fits; cheapest cost per unit relieved first.

    Falls back to a two-move ejection chain, then to a move that shrinks the
    total overflow. Returns True if anything moved.
    """
    cost, dem, cap = prob._cost_l, prob._dem_l, prob._cap_l
    kinds = range(prob.n_kinds)
    over = [_over(load[k][p], cap[k][p]) for k in kinds]
    cands: list[tuple[float, int, int]] = []
    for j in sorted(members[p]):
        relieved = sum(
            min(dem[k][j][p], over[k]) / max(cap[k][p], 1e-12) for k in kinds if over[k] > 0
        )
        if relieved > 0.0:
            cands.extend(
                ((cost[j][q] - cost[j][p]) / relieved, j, q) for q in prob._choices[j] if q != p
            )
    cands.sort()
    moved = False
    for _, j, q in cands:
        over = [_over(load[k][p], cap[k][p]) for k in kinds]
        if not any(over):
            return True
        if a[j] != p or not any(over[k] > 0 and dem[k][j][p] > 0 for k in kinds):
            continue
        if _fits(prob, load, j, q):
            _move(prob, a, load, members, [(j, p, q)])
            moved = True
    over = [_over(load[k][p], cap[k][p]) for k in kinds]
    if not any(over):
        return moved
    chain = _eject(prob, load, members, p, over)
    if chain:
        _move(prob, a, load, members, chain)
        return True
    swap = _swap_relief(prob, a, load, p, over)
    if swap:
        _move(prob, a, load, members, swap)
        return True
    best: tuple[float, int, int] | None = None
    for j in sorted(members[p]):
        relieved = sum(
            min(dem[k][j][p], over[k]) / max(cap[k][p], 1e-12) for k in kinds if over[k] > 0
        )
        for q in prob._choices[j]:
            if q == p or relieved <= 0.0:
                continue
            grow = sum(
                (_over(load[k][q] + dem[k][j][q], cap[k][q]) - _over(load[k][q], cap[k][q]))
                / max(cap[k][q], 1e-12)
                for k in kinds
            )
            net = grow - relieved
            if net < -1e-12 and (best is None or net < best[0]):
                best = (net, j, q)
    if best is not None:
        _move(prob, a, load, members, [(best[1], p, best[2])])
        return True
    return moved


def _swap_relief(
    prob: StaticProblem,
    a: list[int],
    load: list[list[float]],
    p: int,
    over: list[float],
) -> list[tuple[int, int, int]]:
    """The cheapest swap of a job j in ``p`` with a job i elsewhere that shrinks p's overflow.

    The other partition must still fit afterwards. Returns the two moves, or ``[]``.
    """
    cost, dem, cap = prob._cost_l, prob._dem_l, prob._cap_l
    kinds = range(prob.n_kinds)
    tol = [[_TOL * (1.0 + abs(c)) for c in ck] for ck in cap]
    best: tuple[float, list[tuple[int, int, int]]] | None = None
    inside = [j for j in range(prob.n_jobs) if a[j] == p]
    for i in range(prob.n_jobs):
        q = a[i]
        if q == p or p not in prob._allowed[i]:
            continue
        for j in inside:
            if q not in prob._allowed[j]:
                continue
            relieved = 0.0
            ok = True
            for k in kinds:
                new_p = load[k][p] - dem[k][j][p] + dem[k][i][p]
                new_q = load[k][q] - dem[k][i][q] + dem[k][j][q]
                if new_q > cap[k][q] + tol[k][q]:
                    ok = False
                    break
                if over[k] > 0:
                    relieved += (load[k][p] - max(new_p, cap[k][p])) / max(cap[k][p], 1e-12)
                elif new_p > cap[k][p] + tol[k][p]:
                    ok = False
                    break
            if not ok or relieved <= 1e-12:
                continue
            score = (cost[j][q] + cost[i][p] - cost[j][p] - cost[i][q]) / relieved
            if best is None or score < best[0]:
                best = (score, [(j, p, q), (i, q, p)])
    return best[1] if best is not None else []


def _eject(
    prob: StaticProblem,
    load: list[list[float]],
    members: list[set[int]],
    p: int,
    over: list[float],
) -> list[tuple[int, int, int]]:
    """A two-move ejection chain: j leaves p for q, and i leaves q for r to make room.

    Returns the cheapest chain per unit relieved as ``[(i, q, r), (j, p, q)]``,
    or ``[]`` when there is none.
    """
    cost, dem, cap = prob._cost_l, prob._dem_l, prob._cap_l
    kinds = range(prob.n_kinds)
    best: tuple[float, list[tuple[int, int, int]]] | None = None
    for j in sorted(members[p]):
        relieved = sum(
            min(dem[k][j][p], over[k]) / max(cap[k][p], 1e-12) for k in kinds if over[k] > 0
        )
        if relieved <= 0.0:
            continue
        for q in prob._choices[j]:
            if q == p:
                continue
            need = [load[k][q] + dem[k][j][q] - cap[k][q] for k in kinds]
            for i in sorted(members[q]):
                if any(need[k] > 0 and dem[k][i][q] < need[k] for k in kinds):
                    continue
                for r in prob._choices[i]:
                    if r in (p, q) or not _fits(prob, load, i, r):
                        continue
                    dc = cost[j][q] - cost[j][p] + cost[i][r] - cost[i][q]
                    score = dc / relieved
                    if best is None or score < best[0]:
                        best = (score, [(i, q, r), (j, p, q)])
    return best[1] if best is not None else []
