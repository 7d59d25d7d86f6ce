"""Building the query datasets (`tlgrpo data build`) and choosing where a run's queries come from.

Building runs on local backends (no Ray), task by task, with a progress bar. Under the `front`
rule (the default) it builds each task's trade-off front once (about a thousand simulations)
and then draws every query from it without simulating; under `near-reference` it simulates each
query's witness. A front or a file that is already there and fresh is kept as it is, so the
command is idempotent. A run reads the datasets, or, for quick runs, builds queries from seeds
as it goes (`QuerySource`): from the stored front, built through the run's own simulation pool
the first time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simworkers.dataset import (
    DatasetError,
    dataset_path,
    fresh_front_path,
    front_is_fresh,
    front_path,
    pick,
    read_front,
    read_queries,
    seeds,
    stored_count,
    stored_results,
    write_front,
    write_queries,
)
from simworkers.front import Front, build_front, design_key, front_build, front_cost
from simworkers.query import (
    DEFAULT_RULE,
    Query,
    QueryRule,
    Split,
    build_queries,
    front_query,
    near_reference_query_async,
)
from simworkers.result import SimResult
from simworkers.task import Task
from system.agent.episode import Simulate
from system.evaluation.checks import LocalRunner
from wire.storage import local_copy

log = logging.getLogger(__name__)

TRAIN_QUERIES = 10_000  # the paper's training set, spread over the in-domain tasks
EVAL_QUERIES = 100  # per task, the paper's evaluation set


@dataclass(frozen=True)
class Built:
    task: str
    split: Split
    queries: int
    path: Path
    kept: bool  # already there and fresh: nothing simulated


def ensure_front(
    task: Task, runner: LocalRunner, root: Path | None = None, on_progress: Callable[[int], None] | None = None
) -> tuple[Front, bool]:
    """The task's stored front, built and written first when it is missing or stale; and
    whether it was kept as it was."""
    if front_is_fresh(task, root):
        if on_progress:
            on_progress(front_cost(task))
        return read_front(task, root), True
    front = build_front(task, runner.run, on_progress, known=stored_results(task, root))
    write_front(task, front, root)
    return front, False


def build_work(plan: list[tuple[Task, Split, int]], rule: QueryRule = DEFAULT_RULE) -> int:
    """The progress bar's total: queries, plus each front's simulations under the front rule."""
    fronts = {t.name: front_cost(t) for t, _, _ in plan} if rule == "front" else {}
    return sum(count for _, _, count in plan) + sum(fronts.values())


def build_datasets(
    plan: list[tuple[Task, Split, int]],
    runner: LocalRunner,
    root: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 64,
    rule: QueryRule = DEFAULT_RULE,
) -> list[Built]:
    """Each (task, split, count) of the plan: kept when its file already holds `count` fresh
    queries, otherwise built from seeds 0 .. count-1 of the split and written atomically."""
    out = []
    fronts: dict[str, Front] = {}
    for task, split, count in plan:
        if rule == "front" and task.name not in fronts:
            fronts[task.name], kept = ensure_front(task, runner, root, on_progress)
            where = fresh_front_path(task, root) or front_path(task, root)
            out.append(Built(task.name, "front", fronts[task.name].size, where, kept=kept))
        path = dataset_path(task, split, root, rule)
        if stored_count(task, split, root, rule) >= count:
            out.append(Built(task.name, split, count, path, kept=True))
            if on_progress:
                on_progress(count)
            continue
        queries: list[Query] = []
        all_seeds = seeds(split, count)
        if rule == "front":
            queries = [front_query(task, seed, fronts[task.name]) for seed in all_seeds]
            if on_progress:
                on_progress(count)
        else:
            for first in range(0, count, chunk):
                part = all_seeds[first : first + chunk]
                queries += build_queries(task, part, runner.run)
                if on_progress:
                    on_progress(len(part))
        write_queries(task, split, queries, root, rule)
        out.append(Built(task.name, split, count, path, kept=False))
    return out


def default_train_count() -> int:
    """Training queries per in-domain task in the default datasets."""
    from simworkers.catalog import resolve_tasks

    return -(-TRAIN_QUERIES // len(resolve_tasks(["in-domain"])))


def default_plan(tasks: list[Task], train_queries: int, eval_queries: int) -> list[tuple[Task, Split, int]]:
    """Evaluation sets for every task; the training set spread evenly over the in-domain ones."""
    train = [t for t in tasks if t.domain == "in"]
    per_task = -(-train_queries // len(train)) if train and train_queries else 0
    plan: list[tuple[Task, Split, int]] = [(t, "eval", eval_queries) for t in tasks if eval_queries]
    return plan + [(t, "train", per_task) for t in train if per_task]


class QuerySource:
    """Where a run's queries come from: the Parquet datasets of `rule` under `root` (the
    default), or, with `on_the_fly`, built from seeds as the run goes: from the task's stored
    front (built through the run's own simulations and stored the first time), or, under the
    near-reference rule, with one witness simulation each."""

    def __init__(
        self,
        simulate: Simulate,
        *,
        root: str | Path | None = None,
        on_the_fly: bool = False,
        rule: QueryRule = DEFAULT_RULE,
    ):
        """`root`: a folder, a URI (read once into this node's cache), or None: TLGRPO_DATA_DIR."""
        root = Path(local_copy(str(root))) if root is not None else None
        self.simulate, self.root, self.on_the_fly, self.rule = simulate, root, on_the_fly, rule
        self._stored: dict[tuple[str, str], list[Query]] = {}
        self._fronts: dict[str, Front] = {}
        self._lock = asyncio.Lock()

    async def get(self, task: Task, split: Split, count: int, start: int = 0) -> list[Query]:
        """Queries start .. start+count-1 of the split (a training set wraps around)."""
        if not self.on_the_fly:
            key = (task.name, split)
            if key not in self._stored:
                self._stored[key] = read_queries(task, split, self.root, self.rule)
            return pick(task, split, self._stored[key], count, start, self.rule)
        if self.rule == "front":
            front = await self.front(task)
            return [front_query(task, seed, front) for seed in seeds(split, count, start)]
        made = (near_reference_query_async(task, seed, self.simulate) for seed in seeds(split, count, start))
        return list(await asyncio.gather(*made))

    @staticmethod
    async def _known(result: SimResult) -> SimResult:
        return result

    async def training_set(self, task: Task, count: int | None = None) -> list[Query]:
        """The task's training queries (the first `count`; all by default): the stored set, or,
        built from seeds, as many as `tlgrpo data build` would store for an in-domain task. Under
        the front rule a task with no stored training set (an out-of-domain one, which is never
        trained on) draws them from its front: they are the same queries either way."""
        if not self.on_the_fly:
            key = (task.name, "train")
            if key not in self._stored:
                try:
                    self._stored[key] = read_queries(task, "train", self.root, self.rule)
                except DatasetError:
                    if self.rule != "front":
                        raise
                    front = await self.front(task)
                    made = [front_query(task, seed, front) for seed in seeds("train", default_train_count())]
                    self._stored[key] = made
            return self._stored[key][:count] if count else self._stored[key]
        return await self.get(task, "train", count or default_train_count())

    async def front(self, task: Task) -> Front:
        async with self._lock:  # two callers must not build the same front twice
            if task.name not in self._fronts:
                if front_is_fresh(task, self.root):
                    self._fronts[task.name] = read_front(task, self.root)
                else:
                    log.warning(
                        "task %s: no stored trade-off front; building it now (%d simulations, once)",
                        task.name,
                        front_cost(task),
                    )
                    front = await self._build(task)
                    write_front(task, front, self.root)
                    self._fronts[task.name] = front
            return self._fronts[task.name]

    async def _build(self, task: Task) -> Front:
        known = stored_results(task, self.root)  # a stale front's simulations, when only its specs changed
        build = front_build(task)
        designs = next(build)
        while True:
            results = list(
                await asyncio.gather(
                    *(
                        self._known(known[design_key(d)]) if design_key(d) in known else self.simulate(task, d)
                        for d in designs
                    )
                )
            )
            try:
                designs = build.send(results)
            except StopIteration as done:
                return done.value


__all__ = ["Built", "DatasetError", "QuerySource", "build_datasets", "default_plan"]
