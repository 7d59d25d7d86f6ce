"""Queries: reproducible, attainable instances of a task.

A query is a seed, an initial design drawn uniformly (in each parameter's scale) inside the
ranges, and spec targets that a *witness* design is known to meet. Each target is the witness's
metric moved by a random slack inside the spec's margin, in the direction that keeps the witness
inside the spec (a `fixed` spec keeps its nominal target, which the witness meets). The agent
never sees the witness. Two rules choose the witness:

- `front` (the default): a member of the task's trade-off front (simworkers/front.py), so that
  different queries ask for different trade-offs and no single design meets them all. The front
  is built once per task; a query then costs no simulation.
- `near-reference`: a design drawn near the task's reference and simulated (redrawn when it
  fails). One design near the reference then meets nearly every query: an easy environment
  for learning tests, never the benchmark.

Everything follows from (task, seed) (and the front): training and evaluation seeds come from
disjoint ranges, and front rule witnesses of the two splits are disjoint too. The datasets
(simworkers/dataset.py) keep queries on disk, with the rule that built them.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from simworkers.front import Front, FrontError, from_unit
from simworkers.result import SimResult
from simworkers.task import Spec, Task, shortfall

Split = Literal["train", "eval"]
QueryRule = Literal["front", "near-reference"]
QUERY_RULES: dict[str, int] = {"front": 3, "near-reference": 2}  # each rule's version: a dataset built
# by another rule, or another version of one, is refused
DEFAULT_RULE: QueryRule = "front"
EVAL_SEED_BASE = 1_000_000_000  # train seeds are below, eval seeds at or above
WITNESS_ATTEMPTS = 24  # near-reference witnesses drawn per query before the task is declared broken


class QueryError(RuntimeError):
    """No witness of a query simulated: the task's reference region is broken."""


@dataclass(frozen=True)
class Query:
    task: str
    seed: int
    split: Split
    initial: dict[str, float]
    specs: tuple[Spec, ...]
    witness: dict[str, float] = field(default_factory=dict)  # meets every spec; hidden from the agent
    witness_metrics: dict[str, float] = field(default_factory=dict)


def seed_for(split: Split, index: int) -> int:
    if not 0 <= index < EVAL_SEED_BASE:
        raise ValueError(f"query index {index} is outside [0, {EVAL_SEED_BASE})")
    return index if split == "train" else EVAL_SEED_BASE + index


def split_of(seed: int) -> Split:
    return "train" if seed < EVAL_SEED_BASE else "eval"


def rng_for(task: Task, seed: int, *stream: int) -> np.random.Generator:
    # crc32 of the name, not hash(): the same on every process and Python version.
    return np.random.default_rng([zlib.crc32(task.name.encode()), seed, *stream])


def random_design(task: Task, rng: np.random.Generator) -> dict[str, float]:
    return {p.name: from_unit(p, rng.random()) for p in task.params}


def witness_design(task: Task, rng: np.random.Generator) -> dict[str, float]:
    """A design near the reference: each log parameter within a factor (1 + spread) of it, each
    linear one within spread x half its range, clipped to the range."""
    spread = task.witness_spread
    design = {}
    for p in task.params:
        u = rng.uniform(-1.0, 1.0)
        if p.scale == "log":
            value = p.reference * math.exp(u * math.log1p(spread))
        else:
            value = p.reference + u * spread * (p.hi - p.lo) / 2
        design[p.name] = min(p.hi, max(p.lo, value))
    return design


def witness_targets(task: Task, metrics: dict[str, float], rng: np.random.Generator) -> tuple[Spec, ...] | None:
    """The task's specs with targets set from the witness's metrics, each moved by a slack in
    [0, margin] towards the easy side (a range keeps its nominal width, the metric inside it; a
    fixed spec keeps its nominal target); None when a spec's metric is missing or not finite, or
    the witness misses a fixed spec."""
    specs = []
    for spec in task.specs:
        m = metrics.get(spec.metric)
        if m is None or not math.isfinite(m) or (spec.log and m <= 0):
            return None
        if spec.fixed:
            if shortfall(spec, m) > 0:
                return None
            specs.append(spec)
            continue
        slack = float(rng.uniform(0.0, spec.margin))
        if spec.kind == "range":
            place = float(rng.uniform(0.2, 0.8))  # where the metric sits in the window
            if spec.log:
                width = math.log(spec.hi / spec.lo)
                lo = m * math.exp(-place * width)
                specs.append(dataclasses.replace(spec, lo=lo, hi=lo * math.exp(width)))
            else:
                width = spec.hi - spec.lo
                specs.append(dataclasses.replace(spec, lo=m - place * width, hi=m - place * width + width))
            continue
        sign = -1.0 if spec.kind == "min" else 1.0
        if spec.log:
            target = m * math.exp(sign * slack)
        else:
            target = m + sign * slack * (spec.scale if spec.scale is not None else max(abs(m), 1e-30))
        specs.append(dataclasses.replace(spec, **{"lo" if spec.kind == "min" else "hi": target}))
    return tuple(specs)


@dataclass(frozen=True)
class Draft:
    """One attempt at a query: its initial design, a witness to simulate, and the stream that
    sets the targets once the witness's metrics are known."""

    task: Task
    seed: int
    initial: dict[str, float]
    witness: dict[str, float]
    rng: np.random.Generator

    def finish(self, result: SimResult) -> Query | None:
        if not result.ok:
            return None
        specs = witness_targets(self.task, result.metrics, self.rng)
        if specs is None:
            return None
        metrics = {s.metric: float(result.metrics[s.metric]) for s in self.task.specs}
        return Query(self.task.name, self.seed, split_of(self.seed), self.initial, specs, self.witness, metrics)


def drafts(task: Task, seed: int):
    """The attempts of (task, seed), in order; the initial design is the same in every one."""
    initial = random_design(task, rng_for(task, seed))
    for attempt in range(WITNESS_ATTEMPTS):
        rng = rng_for(task, seed, 1 + attempt)
        yield Draft(task, seed, initial, witness_design(task, rng), rng)


def _no_witness(task: Task, seed: int, last: SimResult | None) -> QueryError:
    why = f"last: {last.status} {last.reason}".strip() if last else ""
    return QueryError(
        f"task {task.name}, seed {seed}: none of {WITNESS_ATTEMPTS} witness designs near the reference "
        f"simulated with every spec metric ({why}); check the reference design with "
        f"`tlgrpo simulate {task.name} --reference` and the task's witness_spread"
    )


_LOCAL: list = []


def simulate_here(task: Task, design: dict) -> SimResult:
    """One simulation on a backend of this process (started on first use)."""
    if not _LOCAL:
        from simworkers.backends import make_backend

        _LOCAL.append(make_backend("shared"))
    return _LOCAL[0].simulate(task, design)


def near_reference_query(task: Task, seed: int, simulate: Callable[[Task, dict], SimResult] | None = None) -> Query:
    """The near-reference query of (task, seed); its witness simulated by `simulate`, by default
    on a backend of this process. Runs read built queries from the datasets instead."""
    simulate = simulate or simulate_here
    last = None
    for draft in drafts(task, seed):
        last = simulate(task, draft.witness)
        if (query := draft.finish(last)) is not None:
            return query
    raise _no_witness(task, seed, last)


async def near_reference_query_async(
    task: Task, seed: int, simulate: Callable[[Task, dict], Awaitable[SimResult]]
) -> Query:
    last = None
    for draft in drafts(task, seed):
        last = await simulate(task, draft.witness)
        if (query := draft.finish(last)) is not None:
            return query
    raise _no_witness(task, seed, last)


def build_queries(task: Task, seeds: list[int], run_many: Callable[[Task, list[dict]], list[SimResult]]) -> list[Query]:
    """The near-reference queries of many seeds, their witnesses simulated together in rounds
    (`run_many` runs a list of designs in parallel); a seed whose witness fails tries its next
    draft."""
    pending = {seed: drafts(task, seed) for seed in seeds}
    current = {seed: next(attempts) for seed, attempts in pending.items()}
    done: dict[int, Query] = {}
    while current:
        order = list(current)
        results = run_many(task, [current[s].witness for s in order])
        for seed, result in zip(order, results):
            if (query := current.pop(seed).finish(result)) is not None:
                done[seed] = query
            elif (following := next(pending[seed], None)) is not None:
                current[seed] = following
            else:
                raise _no_witness(task, seed, result)
    return [done[s] for s in seeds]


def front_query(task: Task, seed: int, front: Front) -> Query:
    """The front-rule query of (task, seed): the initial design as for every rule, a cell of the
    front chosen uniformly, one of its members of the seed's split as the witness. No simulation."""
    if front.task != task.name or front.fingerprint != task.fingerprint:
        raise FrontError(
            f"the front given for task {task.name} was built for {front.task} (fingerprint {front.fingerprint}, "
            f"task now {task.fingerprint}): rebuild it with `tlgrpo data build --tasks {task.name}`"
        )
    split = split_of(seed)
    initial = random_design(task, rng_for(task, seed))
    cells = front.cells(split)
    if not cells:
        raise FrontError(f"task {task.name}: its front has no {split} witness; rebuild it with more samples")
    rng = rng_for(task, seed, 1)
    members = cells[sorted(cells)[int(rng.integers(len(cells)))]]
    witness = members[int(rng.integers(len(members)))]
    metrics = front.metrics[witness]
    specs = witness_targets(task, metrics, rng)
    if specs is None:  # an eligible front member has every metric and meets the fixed specs
        raise FrontError(f"task {task.name}: front member {witness} cannot be a witness; rebuild the front")
    chosen = {s.metric: float(metrics[s.metric]) for s in task.specs}
    return Query(task.name, seed, split, initial, specs, dict(front.designs[witness]), chosen)
