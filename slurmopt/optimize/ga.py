"""Genetic algorithm over partition genes, on DEAP (a memetic variant).

Genes are partition indices, one per job. Operators keep every gene inside
the job's allowed partitions: uniform crossover swaps whole genes between two
parents, and mutation redraws a gene from the job's ``choices``. Capacity
overflow is priced by the problem's penalty; infeasible children are
repaired (``problem.repair``) before they enter the population. Each
generation the best child gets a short first-improvement descent through the
problem's incremental evaluator (single moves and swaps): the "memetic" part
that makes a GA competitive on assignment problems.

The first population holds the problem's seeds (``initial_assignments()``,
plus ``initial`` when given), then mutated copies of them. Elitism: a DEAP
``HallOfFame`` whose members go back into every generation.

No ``creator.create``: the fitness and individual classes are defined in this
module, and the toolbox is built per run. DEAP draws from the global
:mod:`random`; the run seeds it and restores it afterwards. The number of
generations follows from the budget in deterministic work units
(``search.step_budget``); the wall clock is a safety stop only
(``stats["stopped_by"] == "deadline"``).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence

from deap import base, tools

from slurmopt.optimize.sa import start_genes
from slurmopt.optimize.search import (
    Assignable,
    Assignment,
    Budget,
    best_of,
    seed_assignments,
    step_budget,
    valid_genes,
)

log = logging.getLogger(__name__)

POP_SIZE = 30
CXPB = 0.7
MUTPB = 0.4
LOCAL_STEPS = 300
"""First-improvement trials per generation on the best child."""


class _Fitness(base.Fitness):  # type: ignore[misc]
    weights = (-1.0,)


class _Individual(list[int]):
    """A gene list carrying a DEAP fitness (instead of ``creator.Individual``)."""

    def __init__(self, genes: Sequence[int] = ()) -> None:
        super().__init__(genes)
        self.fitness = _Fitness()


def _offspring_cost(problem: Assignable) -> int:
    """Work units (local-search steps) one child costs: clone, vary, evaluate."""
    return max(1, problem.n_jobs // 12 + 5)


def descend(
    problem: Assignable,
    genes: list[int],
    rng: random.Random,
    trials: int,
    *,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.perf_counter,
) -> list[int]:
    """First-improvement descent: ``trials`` random single moves or swaps, keep improving ones.

    Stops early at ``deadline`` (read from ``clock``).
    """
    ev = problem.incremental(genes)
    choices = problem.choices
    allowed = [frozenset(c) for c in choices]
    movable = [j for j, c in enumerate(choices) if len(c) > 1]
    if not movable:
        return genes
    cur = list(genes)
    for _ in range(trials):
        if clock() >= deadline:
            break
        j = movable[rng.randrange(len(movable))]
        p = cur[j]
        if rng.random() < 0.5:
            q = choices[j][rng.randrange(len(choices[j]))]
            if q != p and ev.delta(j, q) < -1e-12:
                ev.apply(j, q)
                cur[j] = q
            continue
        i = rng.randrange(len(cur))
        r = cur[i]
        if r == p or r not in allowed[j] or p not in allowed[i]:
            continue
        before = ev.value
        ev.apply(j, r)
        ev.apply(i, p)
        if ev.value < before - 1e-12:
            cur[j], cur[i] = r, p
        else:
            ev.apply(i, r)
            ev.apply(j, p)
    return cur


def solve(
    problem: Assignable,
    *,
    seed: int,
    budget: Budget,
    initial: Sequence[int] | None = None,
    share: float = 1.0,
    hard_deadline: float | None = None,
) -> Assignment:
    """Evolve from the problem's seeds (and ``initial``) within ``share`` of the budget."""
    rng = random.Random(seed)
    saved = random.getstate()
    random.seed(seed)
    try:
        t0 = budget.clock()
        deadline = t0 + budget.seconds * share * 0.97
        if hard_deadline is not None:
            deadline = min(deadline, hard_deadline)
        evo = _Evolution(problem, budget, deadline, rng, initial)
        return _run(evo, seed=seed, share=share, t0=t0)
    finally:
        random.setstate(saved)


def _run(evo: _Evolution, *, seed: int, share: float, t0: float) -> Assignment:
    """Evolve until the generation budget (from the step budget) or the deadline."""
    problem, budget, deadline = evo.problem, evo.budget, evo.deadline
    evo.populate()
    units = step_budget(problem, budget, share=share)
    per_gen = POP_SIZE * _offspring_cost(problem) + LOCAL_STEPS
    generations = max(1, units // per_gen)
    stopped_by = "generations"
    while evo.gen < generations:
        if budget.clock() >= deadline:
            stopped_by = "deadline"
            break
        evo.generation()
    cands = [list(h) for h in evo.hof] + [evo.start]
    i, obj, ok = best_of(problem, cands)
    return Assignment(
        genes=tuple(cands[i]),
        objective=obj,
        solver="ga",
        seed=seed,
        feasible=ok,
        wall_s=budget.clock() - t0,
        stats={
            "start": evo.start_name,
            "start_objective": evo.start_obj,
            "seeds": len(evo.seeds),
            "generations": evo.gen,
            "generation_budget": generations,
            "population": POP_SIZE,
            "stopped_by": stopped_by,
            "logbook": [dict(r) for r in evo.logbook[-5:]],
        },
    )


class _Evolution:
    """One GA run's state: toolbox, population, hall of fame, logbook.

    Uses the module-level ``random`` (seeded by :func:`solve`) for DEAP's
    operators and ``rng`` for the local descent, in a fixed order, so a seed
    gives one result.
    """

    def __init__(
        self,
        problem: Assignable,
        budget: Budget,
        deadline: float,
        rng: random.Random,
        initial: Sequence[int] | None,
    ) -> None:
        self.problem = problem
        self.budget = budget
        self.deadline = deadline
        self.rng = rng
        self.seeds = [g for _, g in seed_assignments(problem)]
        if initial is not None and valid_genes(problem, initial):
            self.seeds.insert(0, [int(g) for g in initial])
        self.start_name, self.start, self.start_obj = start_genes(problem, initial)
        if not self.seeds:
            self.seeds = [self.start]
        self.indpb = min(0.5, 2.0 / max(1, problem.n_jobs))
        self.tb = self._toolbox()
        self.pop: list[_Individual] = []
        self.hof = tools.HallOfFame(2)
        self.stats = tools.Statistics(lambda ind: ind.fitness.values[0])
        self.stats.register("min", min)
        self.stats.register("avg", lambda v: sum(v) / len(v))
        self.logbook = tools.Logbook()
        self.gen = 0

    def _mutate(self, ind: _Individual) -> tuple[_Individual]:
        choices = self.problem.choices
        for j in range(len(ind)):
            if random.random() < self.indpb:
                ch = choices[j]
                ind[j] = ch[random.randrange(len(ch))]
        return (ind,)

    def _evaluate(self, ind: _Individual) -> tuple[float]:
        return (self.problem.evaluate(ind),)

    def _toolbox(self) -> base.Toolbox:
        tb = base.Toolbox()
        tb.register("mate", tools.cxUniform, indpb=0.5)
        tb.register("mutate", self._mutate)
        tb.register("select", tools.selTournament, tournsize=3)
        tb.register("evaluate", self._evaluate)
        return tb

    def _late(self) -> bool:
        return bool(self.budget.clock() >= self.deadline)

    def populate(self) -> None:
        """The first population: the seeds, then mutated copies of them."""
        seeds = self.seeds
        pop = [_Individual(seeds[i % len(seeds)]) for i in range(POP_SIZE)]
        for ind in pop[len(seeds) :]:
            if self._late():
                break
            for _ in range(3):
                self._mutate(ind)
            ind[:] = self.problem.repair(list(ind))
        for i, ind in enumerate(pop):
            if i >= len(seeds) and self._late():
                ind[:] = pop[i % len(seeds)]
            ind.fitness.values = self.tb.evaluate(ind)
        self.pop = pop
        self.hof.update(pop)
        self.logbook.record(gen=0, evals=len(pop), **self.stats.compile(pop))

    def _vary(self) -> list[_Individual]:
        tb = self.tb
        offspring: list[_Individual] = [tb.clone(i) for i in tb.select(self.pop, len(self.pop))]
        for a, b in zip(offspring[::2], offspring[1::2], strict=False):
            if random.random() < CXPB:
                tb.mate(a, b)
                del a.fitness.values, b.fitness.values
        for ind in offspring:
            if random.random() < MUTPB:
                tb.mutate(ind)
                del ind.fitness.values
        return offspring

    def generation(self) -> None:
        """One generation: select, vary, evaluate, improve the leader, keep the elite."""
        self.gen += 1
        tb, problem = self.tb, self.problem
        offspring = self._vary()
        fresh = [ind for ind in offspring if not ind.fitness.valid]
        for ind in fresh:
            if self._late():
                ind[:] = self.start
            elif not problem.feasible(ind):
                ind[:] = problem.repair(list(ind))
            ind.fitness.values = tb.evaluate(ind)
        leader = min(offspring, key=lambda i: i.fitness.values[0])
        leader[:] = descend(
            problem,
            list(leader),
            self.rng,
            LOCAL_STEPS,
            deadline=self.deadline,
            clock=self.budget.clock,
        )
        leader.fitness.values = tb.evaluate(leader)
        offspring[-len(self.hof) :] = [tb.clone(h) for h in self.hof]
        self.pop = offspring
        self.hof.update(offspring)
        self.logbook.record(gen=self.gen, evals=len(fresh), **self.stats.compile(offspring))
