"""Task health: the reference design meets the nominal specs, and every random design simulates
or fails cleanly (the statuses are counted). Random designs are scored against queries' targets:
the front's (the benchmark's) when the task's front is given, and then a median of 0.9 or more
is a task too easy; otherwise near-reference ones, which need no front so every task checks
quickly, and where one design near the reference solves nearly everything by design, so their
median is reported, not judged. Whether random designs find reward on the benchmark's queries,
and whether a shortcut wins, is `tlgrpo tasks calibrate`'s to measure.

Runs designs on a small local set of backends (one per core, in threads: the work happens in the
ngspice processes), so it needs no Ray and suits `tlgrpo tasks check` and the tests alike.
"""

from __future__ import annotations

import os
import statistics
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from simworkers.backends import Backend, make_backend
from simworkers.dataset import seeds
from simworkers.front import Front
from simworkers.query import build_queries, front_query, random_design, rng_for
from simworkers.result import SimResult
from simworkers.task import Task
from system.agent.feedback import spec_rule
from system.agent.reward import score_result

RANDOM_MEDIAN_LIMIT = 0.9  # a task that random designs mostly solve teaches nothing
DESIGNS_PER_QUERY = 5


class LocalRunner:
    """Simulate many designs on `workers` backends in parallel, without Ray."""

    def __init__(self, backend: str = "shared", workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._local = threading.local()
        self._backends: list[Backend] = []
        self._lock = threading.Lock()
        self._name = backend
        self._pool = ThreadPoolExecutor(self.workers)

    def _backend(self) -> Backend:
        if not hasattr(self._local, "backend"):
            self._local.backend = make_backend(self._name)
            with self._lock:
                self._backends.append(self._local.backend)
        return self._local.backend

    def run(self, task: Task, designs: Iterable[dict]) -> list[SimResult]:
        return list(self._pool.map(lambda d: self._backend().simulate(task, d), designs))

    def close(self) -> None:
        self._pool.shutdown()
        for backend in self._backends:
            backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class TaskCheck:
    task: str
    domain: str
    reference: SimResult
    reference_score: float
    random_scores: tuple[float, ...]
    random_statuses: dict[str, int]
    ms_per_sim: float  # median over the random designs that simulated
    slowest_ms: float  # the slowest random design, failed or not: what a worker may have to wait
    rule: str = "near-reference"  # the queries the random designs were scored against

    @property
    def random_median(self) -> float:
        return statistics.median(self.random_scores)

    @property
    def random_nonzero(self) -> float:
        return sum(s > 0 for s in self.random_scores) / len(self.random_scores)

    @property
    def passed(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        out = []
        if self.reference_score < 1.0:
            why = self.reference.reason or "specs missed"
            out.append(f"reference design scores {self.reference_score:.3f} < 1 ({why})")
        if self.rule == "front" and self.random_median >= RANDOM_MEDIAN_LIMIT:
            out.append(f"random median {self.random_median:.3f} >= {RANDOM_MEDIAN_LIMIT}: specs too easy")
        return out


def random_designs(task: Task, count: int, seed: int = 20_240_601) -> list[dict[str, float]]:
    rng = rng_for(task, seed)
    return [random_design(task, rng) for _ in range(count)]


def check_task(task: Task, runner: LocalRunner, n_random: int = 200, front: Front | None = None) -> TaskCheck:
    """The reference against the nominal specs; `n_random` random designs, five per evaluation
    query, each against its query's targets (what random search at budget 5 meets): the front's
    queries when a front is given, near-reference ones otherwise."""
    reference = runner.run(task, [task.reference()])[0]
    query_seeds = seeds("eval", -(-n_random // DESIGNS_PER_QUERY))
    if front is not None:
        queries = [front_query(task, seed, front) for seed in query_seeds]
    else:
        queries = build_queries(task, query_seeds, runner.run)
    pairs = []
    for query in queries:
        rng = rng_for(task, query.seed, 0)
        pairs += [(query, random_design(task, rng)) for _ in range(DESIGNS_PER_QUERY)]
    pairs = pairs[:n_random]
    results = runner.run(task, [design for _, design in pairs])
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    ok_times = sorted(r.elapsed_s for r in results if r.ok) or [reference.elapsed_s]
    return TaskCheck(
        task.name,
        task.domain,
        reference,
        score_result(task.specs, reference).value,
        tuple(score_result(q.specs, r).value for (q, _), r in zip(pairs, results)),
        statuses,
        1000 * statistics.median(ok_times),
        1000 * max([r.elapsed_s for r in results] or [reference.elapsed_s]),
        "front" if front is not None else "near-reference",
    )


def task_summary(task: Task, runner: LocalRunner, n_random: int = 0, front: Front | None = None) -> dict:
    """One row of `tasks list` / `tasks doc`: the task's shape and, measured now, the time of a
    warm reference simulation, the reference score and (n_random > 0) the random median and the
    median and slowest time of a random design."""
    runner.run(task, [task.reference()] * runner.workers)  # start ngspice and load the circuit
    reference = min(runner.run(task, [task.reference()] * 3), key=lambda r: r.elapsed_s)
    row = {
        "task": task.name,
        "domain": "in-domain" if task.domain == "in" else "out-of-domain",
        "family": task.family,
        "process": task.process,
        "params": len(task.params),
        "specs": [spec_rule(task, s) for s in task.specs],
        "description": task.description,
        "ms_per_sim": round(1000 * reference.elapsed_s, 1),
        "reference_status": reference.status,
        "reference_score": score_result(task.specs, reference).value,
        "random_median": None,
        "random_nonzero": None,
        "random_statuses": None,
        "random_ms_median": None,
        "random_ms_max": None,
    }
    if n_random:
        check = check_task(task, runner, n_random, front)
        row.update(
            random_median=check.random_median,
            random_nonzero=check.random_nonzero,
            random_statuses=check.random_statuses,
            random_ms_median=round(check.ms_per_sim, 1),
            random_ms_max=round(check.slowest_ms, 1),
            passed=check.passed,
        )
    else:
        row["passed"] = row["reference_score"] >= 1.0
    return row
