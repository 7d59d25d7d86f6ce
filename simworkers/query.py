"""Queries: reproducible instances of a task.

A query is a seed, an initial design drawn uniformly (in each parameter's scale) inside the
ranges, and spec targets moved from the nominal ones by a random fraction inside each spec's
margin. Everything follows from (task, split, index): training and evaluation seeds come from
disjoint ranges, so a held-out query is never trained on.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from simworkers.task import Spec, Task

Split = Literal["train", "eval"]
EVAL_SEED_BASE = 1_000_000_000  # train seeds are below, eval seeds at or above


@dataclass(frozen=True)
class Query:
    task: str
    seed: int
    split: Split
    initial: dict[str, float]
    specs: tuple[Spec, ...]


def seed_for(split: Split, index: int) -> int:
    if not 0 <= index < EVAL_SEED_BASE:
        raise ValueError(f"query index {index} is outside [0, {EVAL_SEED_BASE})")
    return index if split == "train" else EVAL_SEED_BASE + index


def split_of(seed: int) -> Split:
    return "train" if seed < EVAL_SEED_BASE else "eval"


def rng_for(task: Task, seed: int) -> np.random.Generator:
    # crc32 of the name, not hash(): the same on every process and Python version.
    return np.random.default_rng([zlib.crc32(task.name.encode()), seed])


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


def shifted_spec(spec: Spec, rng: np.random.Generator) -> Spec:
    offset = float(rng.uniform(-spec.margin, spec.margin))
    move = (lambda v: v * math.exp(offset)) if spec.log else (lambda v: v + offset * abs(v))
    if spec.kind == "range" and not spec.log:  # shift the window by a fraction of its width
        width = spec.hi - spec.lo
        return dataclasses.replace(spec, lo=spec.lo + offset * width, hi=spec.hi + offset * width)
    return dataclasses.replace(
        spec, lo=None if spec.lo is None else move(spec.lo), hi=None if spec.hi is None else move(spec.hi)
    )


def make_query(task: Task, seed: int) -> Query:
    rng = rng_for(task, seed)
    initial = random_design(task, rng)
    specs = tuple(shifted_spec(s, rng) for s in task.specs)
    return Query(task.name, seed, split_of(seed), initial, specs)


def queries(task: Task, split: Split, count: int, start: int = 0) -> list[Query]:
    return [make_query(task, seed_for(split, start + i)) for i in range(count)]
