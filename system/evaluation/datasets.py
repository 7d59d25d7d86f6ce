"""Building the query datasets (`tlgrpo data build`) and choosing where a run's queries come from.

Building simulates every query's witness on local backends (no Ray), task by task, with a progress
bar; a file that already holds enough fresh queries is kept as it is, so the command is
idempotent. A run reads the datasets, or, for quick runs, builds queries from seeds on the fly
through its own simulation pool (`QuerySource`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simworkers.dataset import DatasetError, dataset_path, pick, read_queries, seeds, stored_count, write_queries
from simworkers.query import Query, Split, build_queries, make_query_async
from simworkers.task import Task
from system.agent.episode import Simulate
from system.evaluation.checks import LocalRunner

TRAIN_QUERIES = 10_000  # the paper's training set, spread over the in-domain tasks
EVAL_QUERIES = 100  # per task, the paper's evaluation set


@dataclass(frozen=True)
class Built:
    task: str
    split: Split
    queries: int
    path: Path
    kept: bool  # already there and fresh: nothing simulated


def build_datasets(
    plan: list[tuple[Task, Split, int]],
    runner: LocalRunner,
    root: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> list[Built]:
    """Each (task, split, count) of the plan: kept when its file already holds `count` fresh
    queries, otherwise built from seeds 0 .. count-1 of the split and written atomically."""
    out = []
    for task, split, count in plan:
        path = dataset_path(task, split, root)
        if stored_count(task, split, root) >= count:
            out.append(Built(task.name, split, count, path, kept=True))
            if on_progress:
                on_progress(count)
            continue
        queries: list[Query] = []
        all_seeds = seeds(split, count)
        for first in range(0, count, chunk):
            part = all_seeds[first : first + chunk]
            queries += build_queries(task, part, runner.run)
            if on_progress:
                on_progress(len(part))
        write_queries(task, split, queries, root)
        out.append(Built(task.name, split, count, path, kept=False))
    return out


def default_plan(tasks: list[Task], train_queries: int, eval_queries: int) -> list[tuple[Task, Split, int]]:
    """Evaluation sets for every task; the training set spread evenly over the in-domain ones."""
    train = [t for t in tasks if t.domain == "in"]
    per_task = -(-train_queries // len(train)) if train and train_queries else 0
    plan: list[tuple[Task, Split, int]] = [(t, "eval", eval_queries) for t in tasks if eval_queries]
    return plan + [(t, "train", per_task) for t in train if per_task]


class QuerySource:
    """Where a run's queries come from: the Parquet datasets under `root` (the default), or,
    with `on_the_fly`, built from seeds through the run's own simulations (one witness each)."""

    def __init__(self, simulate: Simulate, *, root: Path | None = None, on_the_fly: bool = False):
        self.simulate, self.root, self.on_the_fly = simulate, root, on_the_fly
        self._stored: dict[tuple[str, str], list[Query]] = {}

    async def get(self, task: Task, split: Split, count: int, start: int = 0) -> list[Query]:
        """Queries start .. start+count-1 of the split (a training set wraps around)."""
        if not self.on_the_fly:
            key = (task.name, split)
            if key not in self._stored:
                self._stored[key] = read_queries(task, split, self.root)
            return pick(task, split, self._stored[key], count, start)
        made = (make_query_async(task, seed, self.simulate) for seed in seeds(split, count, start))
        return list(await asyncio.gather(*made))


__all__ = ["Built", "DatasetError", "QuerySource", "build_datasets", "default_plan"]
