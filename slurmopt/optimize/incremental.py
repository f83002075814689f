"""Incremental evaluation of the time-aware problem (for SA and local search).

See :mod:`slurmopt.optimize.schedule` for the idea: a move re-schedules only
the components it touches, from the moved job's priority position on.

The jobs of a component before ``pos`` are replayed from their recorded
reservations (no search); after ``pos``, a job none of whose candidate nodes
has a changed reservation yet keeps its placement (the search would find the
same one), so only jobs that can see the change are searched again.

Profile checkpoints every k jobs were tried and dropped: copying a
component's profiles costs more than replaying a few dozen reservations
(measured on the 2,000-node benchmark).

Undo: the last few applied moves keep what they replaced, so undoing one
(``apply(j, old)`` right after ``apply(j, new)``, as SA does when it rejects a
move) costs no scheduling at all.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slurmopt.optimize.profile import INF
from slurmopt.optimize.schedule import combine, commit, contribution, place

if TYPE_CHECKING:
    from slurmopt.optimize.problem import Problem

_UNDO_DEPTH = 4


@dataclass(slots=True)
class _CompState:
    total: float
    end: float
    pen: float


@dataclass(slots=True)
class _Change:
    """A component's new schedule after a move (computed, maybe not applied)."""

    members: list[int]
    placed: dict[int, tuple[float, list[int]]]
    state: _CompState


@dataclass(slots=True)
class _Pending:
    job: int
    part: int
    value: float
    comps: dict[int, _Change]


@dataclass(slots=True)
class _Undo:
    """What an applied move replaced (to restore it when the move is undone)."""

    job: int
    part: int
    """The partition to go back to."""
    value: float
    comps: dict[int, tuple[list[int], _CompState]]
    placed: dict[int, tuple[float, list[int]]]


class Incremental:
    """A mutable assignment whose objective is kept up to date (``IncrementalEvaluator``)."""

    def __init__(self, problem: Problem, genes: list[int]) -> None:
        self.problem = problem
        self.parts = problem.parts_of(genes)
        n = len(self.parts)
        self.starts: list[float] = [INF] * n
        self.picks: list[list[int]] = [[] for _ in range(n)]
        ncomp = len(problem.comp_nodes)
        self.members: list[list[int]] = [[] for _ in range(ncomp)]
        for o, p in enumerate(self.parts):
            self.members[problem.comp_of_part[p]].append(o)
        self.comp: list[_CompState] = []
        for c in range(ncomp):
            ch = self._reschedule(c, self.members[c], -1, None)
            for x, (s, ns) in ch.placed.items():
                self.starts[x] = s
                self.picks[x] = ns
            self.comp.append(ch.state)
        self._value = self._combine(self.comp)
        self._pending: _Pending | None = None
        self._undo: list[_Undo] = []
        self.evaluations = 0

    # -- protocol --------------------------------------------------------------
    @property
    def value(self) -> float:
        return self._value

    @property
    def assignment(self) -> list[int]:
        return [self.parts[o] for o in self.problem.var_pos]

    def part_of(self, job: int) -> int:
        """Current partition of gene ``job``."""
        return self.parts[self.problem.var_pos[job]]

    def delta(self, job: int, part: int) -> float:
        """Objective change if gene ``job`` moved to ``part`` (state unchanged)."""
        pend = self._compute(job, part)
        self._pending = pend
        return pend.value - self._value

    def apply(self, job: int, part: int) -> None:
        """Move gene ``job`` to ``part`` (undoing a recent move restores its saved state)."""
        o = self.problem.var_pos[job]
        if self.parts[o] == part:
            return
        if self._undo and self._undo[-1].job == job and self._undo[-1].part == part:
            self._restore(self._undo.pop())
            self._pending = None
            return
        pend = self._pending
        if pend is None or pend.job != job or pend.part != part:
            pend = self._compute(job, part)
        self._pending = None
        undo = _Undo(job, self.parts[o], self._value, {}, {})
        self.parts[o] = part
        for c, ch in pend.comps.items():
            undo.comps[c] = (self.members[c], self.comp[c])
            self.members[c] = ch.members
            self.comp[c] = ch.state
            for x, (s, ns) in ch.placed.items():
                undo.placed[x] = (self.starts[x], self.picks[x])
                self.starts[x] = s
                self.picks[x] = ns
        self._value = pend.value
        self._undo.append(undo)
        if len(self._undo) > _UNDO_DEPTH:
            del self._undo[0]

    # -- internals -------------------------------------------------------------
    def _restore(self, undo: _Undo) -> None:
        self.parts[self.problem.var_pos[undo.job]] = undo.part
        for c, (members, state) in undo.comps.items():
            self.members[c] = members
            self.comp[c] = state
        for x, (s, ns) in undo.placed.items():
            self.starts[x] = s
            self.picks[x] = ns
        self._value = undo.value

    def _combine(self, comps: list[_CompState]) -> float:
        total = sum(c.total for c in comps)
        pen = sum(c.pen for c in comps)
        end = max((c.end for c in comps), default=-INF)
        return combine(self.problem, total, end, pen)

    def _compute(self, job: int, part: int) -> _Pending:
        self.evaluations += 1
        prob = self.problem
        o = prob.var_pos[job]
        old = self.parts[o]
        if part == old:
            return _Pending(job, part, self._value, {})
        cq, cp = prob.comp_of_part[old], prob.comp_of_part[part]
        changes: dict[int, _Change] = {}
        if cq == cp:
            changes[cq] = self._reschedule(cq, self.members[cq], o, part)
        else:
            mq = list(self.members[cq])
            del mq[bisect_left(mq, o)]
            mp = list(self.members[cp])
            insort(mp, o)
            changes[cq] = self._reschedule(cq, mq, o, None)
            changes[cp] = self._reschedule(cp, mp, o, part)
        comps = list(self.comp)
        for c, ch in changes.items():
            comps[c] = ch.state
        return _Pending(job, part, self._combine(comps), changes)

    def _reschedule(self, c: int, members: list[int], pos: int, new_part: int | None) -> _Change:
        """Re-schedule component ``c`` from position ``pos`` (that job may go to ``new_part``).

        ``members`` is the component's job list after the move; its jobs before
        ``pos`` keep their recorded reservations.
        """
        prob = self.problem
        full = pos < 0
        kpos = 0 if full else bisect_left(members, pos)
        prof = prob.base.copy(prob.comp_nodes[c])
        opts, parts, starts, picks = prob.options, self.parts, self.starts, self.picks
        for x in members[:kpos]:
            commit(prof, opts[x][parts[x]], starts[x], picks[x])
        # nodes whose reservations differ from the current schedule so far: a job
        # none of whose candidate nodes is dirty would find the same placement
        dirty: set[int] = set()
        if not full and (kpos == len(members) or members[kpos] != pos):
            dirty.update(picks[pos])  # the moved job left this component
        placed: dict[int, tuple[float, list[int]]] = {}
        total, end, pen = 0.0, -INF, 0.0
        for idx, x in enumerate(members):
            if idx < kpos:
                t, e, pn = contribution(prob, x, parts[x], starts[x])
            else:
                moved = x == pos and new_part is not None
                p = new_part if moved and new_part is not None else parts[x]
                opt = opts[x][p]
                if not full and not moved and dirty.isdisjoint(opt.nodes):
                    s, ns = starts[x], picks[x]
                else:
                    s, ns = place(prof, opt, prob.t0[x])
                    if full or moved or s != starts[x] or ns != picks[x]:
                        placed[x] = (s, ns)
                        if not full:
                            dirty.update(picks[x])
                            dirty.update(ns)
                commit(prof, opt, s, ns)
                t, e, pn = contribution(prob, x, p, s)
            total += t
            pen += pn
            end = max(end, e)
        return _Change(members, placed, _CompState(total, end, pen))
