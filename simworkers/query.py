"""Queries: reproducible, attainable instances of a task.

A query is a seed, an initial design drawn uniformly (in each parameter's scale) inside the
ranges, and spec targets that a *witness* design is known to meet. The witness is drawn near the
task's reference design and simulated; each target is then its metric moved by a random slack
inside the spec's margin, in the direction that keeps the witness inside the spec. A witness that
fails to simulate is redrawn, never kept. The agent never sees the witness.

Everything follows from (task, seed): training and evaluation seeds come from disjoint ranges, so
a held-out query is never trained on. Building a query costs one simulation or a few; the
datasets (simworkers/dataset.py) keep them on disk so that a run never simulates a witness again.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from simworkers.result import SimResult
from simworkers.task import Spec, Task

Split = Literal["train", "eval"]
EVAL_SEED_BASE = 1_000_000_000  # train seeds are below, eval seeds at or above
WITNESS_ATTEMPTS = 24  # witnesses drawn per query before the task is declared broken
QUERY_RULE = 2  # the generation rule's version: datasets built by another rule are refused


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
    design = {}
    for p in task.params:
        u = rng.random()
        if p.scale == "log":
            value = math.exp(math.log(p.lo) + u * (math.log(p.hi) - math.log(p.lo)))
        else:
            value = p.lo + u * (p.hi - p.lo)
        design[p.name] = min(p.hi, max(p.lo, value))
    return design


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
    [0, margin] towards the easy side (a range keeps its nominal width, the metric inside it);
    None when a spec's metric is missing or not finite."""
    specs = []
    for spec in task.specs:
        m = metrics.get(spec.metric)
        if m is None or not math.isfinite(m) or (spec.log and m <= 0):
            return None
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


def make_query(task: Task, seed: int, simulate: Callable[[Task, dict], SimResult] | None = None) -> Query:
    """The query of (task, seed); its witness simulated by `simulate`, by default on a backend of
    this process. Runs read built queries from the datasets instead."""
    simulate = simulate or simulate_here
    last = None
    for draft in drafts(task, seed):
        last = simulate(task, draft.witness)
        if (query := draft.finish(last)) is not None:
            return query
    raise _no_witness(task, seed, last)


async def make_query_async(task: Task, seed: int, simulate: Callable[[Task, dict], Awaitable[SimResult]]) -> Query:
    last = None
    for draft in drafts(task, seed):
        last = await simulate(task, draft.witness)
        if (query := draft.finish(last)) is not None:
            return query
    raise _no_witness(task, seed, last)


def queries(task: Task, split: Split, count: int, start: int = 0) -> list[Query]:
    """Queries start .. start+count-1 of a split, built here (see make_query)."""
    return [make_query(task, seed_for(split, start + i)) for i in range(count)]


def build_queries(task: Task, seeds: list[int], run_many: Callable[[Task, list[dict]], list[SimResult]]) -> list[Query]:
    """The queries of many seeds, their witnesses simulated together in rounds (`run_many`
    runs a list of designs in parallel); a seed whose witness fails tries its next draft."""
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
