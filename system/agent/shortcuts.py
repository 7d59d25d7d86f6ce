"""Shortcut baselines (SPEC section 2): what a benchmark must not let win.

- `centre`: the middle of every range (geometric for log parameters), proposed once.
- `reference`: the task's reference design, proposed once.
- `constant`: the one design that scores best on the task's training queries, chosen among every
  design simulated for its trade-off front (the reference, the centre and at least a thousand
  samples across the box, the front's members among them), proposed once on every query.
- `lookup` (in domain): the witnesses of the training queries whose targets lie nearest to the
  query's (each spec's target standardised over the training set), one simulation a turn, until
  one meets every spec or the budget is spent: what memorising the training set gives.

None of them reads the feedback; `centre`, `reference` and `constant` do not read the targets
either. A suite on which one of them beats random search measures no optimisation.
"""

from __future__ import annotations

import math

import numpy as np

from simworkers.front import Front, centre_design
from simworkers.query import Query
from simworkers.task import Spec, Task
from system.agent.episode import Episode, Protocol, Simulate, start_episode
from system.agent.policies import Policy, QuerySupply, simulated_turn
from system.agent.reward import score_table

CONSTANT_QUERIES = 500  # training queries the constant design is chosen on


def choose_constant(task: Task, front: Front, training: list[Query]) -> tuple[int, float]:
    """The front's simulated design with the best mean score on `training`: its index, its mean."""
    candidates = front.simulated()
    scores = score_table([q.specs for q in training], [front.metrics[i] for i in candidates]).mean(axis=1)
    best = int(np.argmax(scores))
    return candidates[best], float(scores[best])


class FixedDesign(Policy):
    """One design per task, proposed once whatever the query says."""

    def design(self, task: Task) -> dict[str, float]:
        raise NotImplementedError

    async def run(self, task, query, protocol: Protocol, budget: int, simulate: Simulate) -> Episode:
        episode = await start_episode(task, query, self.name, protocol, budget, simulate)
        if budget > 0:
            episode.turns.append(await simulated_turn(task, query, 1, self.design(task), simulate))
        return episode


class Centre(FixedDesign):
    name = "centre"

    def design(self, task):
        return centre_design(task)


class Reference(FixedDesign):
    name = "reference"

    def design(self, task):
        return task.reference()


class Constant(FixedDesign):
    name = "constant"

    def __init__(self):
        self._chosen: dict[str, dict[str, float]] = {}
        self.training_score: dict[str, float] = {}  # its mean score on the queries it was chosen on

    async def prepare(self, task: Task, queries: QuerySupply) -> None:
        if task.name not in self._chosen:
            front = await queries.front(task)
            training = await queries.training_set(task, CONSTANT_QUERIES)
            index, mean = choose_constant(task, front, training)
            self._chosen[task.name], self.training_score[task.name] = dict(front.designs[index]), mean

    def design(self, task):
        if task.name not in self._chosen:
            raise RuntimeError(f"constant: no design chosen for {task.name} (prepare() was not called)")
        return self._chosen[task.name]


def target_vector(specs: tuple[Spec, ...]) -> list[float]:
    """A query's targets as numbers: a bound (a window's middle), in log for a log spec."""
    out = []
    for s in specs:
        if s.kind == "range":
            value = math.sqrt(s.lo * s.hi) if s.log else (s.lo + s.hi) / 2
        else:
            value = s.lo if s.kind == "min" else s.hi
        out.append(math.log(value) if s.log else value)
    return out


class Lookup(Policy):
    name = "lookup"

    def __init__(self):
        self._index: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, list[Query]]] = {}

    def applies_to(self, task: Task) -> bool:
        return task.domain == "in"

    async def prepare(self, task: Task, queries: QuerySupply) -> None:
        if task.name not in self._index:
            training = await queries.training_set(task)
            targets = np.array([target_vector(q.specs) for q in training])
            mean, sd = targets.mean(axis=0), targets.std(axis=0)
            sd = np.where(sd > 0, sd, np.inf)  # a fixed spec's target never differs: no weight
            self._index[task.name] = ((targets - mean) / sd, mean, sd, training)

    def nearest(self, task: Task, query: Query, count: int) -> list[dict[str, float]]:
        """The witnesses of the training queries nearest to this query's targets, distinct."""
        if task.name not in self._index:
            raise RuntimeError(f"lookup: no training set for {task.name} (prepare() was not called)")
        table, mean, sd, training = self._index[task.name]
        here = (np.array(target_vector(query.specs)) - mean) / sd
        out: list[dict[str, float]] = []
        for i in np.argsort(np.linalg.norm(table - here, axis=1), kind="stable"):
            if training[i].witness not in out:
                out.append(dict(training[i].witness))
            if len(out) == count:
                break
        return out

    async def run(self, task, query, protocol: Protocol, budget: int, simulate: Simulate) -> Episode:
        episode = await start_episode(task, query, self.name, protocol, budget, simulate)
        for k, design in enumerate(self.nearest(task, query, budget), start=1):
            turn = await simulated_turn(task, query, k, design, simulate)
            episode.turns.append(turn)
            if turn.score >= 1.0:
                break
        return episode


SHORTCUTS = ("centre", "reference", "constant", "lookup")


def make_shortcut(name: str) -> Policy:
    if name == "centre":
        return Centre()
    if name == "reference":
        return Reference()
    if name == "constant":
        return Constant()
    if name == "lookup":
        return Lookup()
    raise ValueError(f"unknown shortcut baseline {name!r}: use one of {', '.join(SHORTCUTS)}")
