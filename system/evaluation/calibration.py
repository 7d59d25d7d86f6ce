"""Task difficulty, measured and checked against SPEC section 2 (`tlgrpo tasks calibrate`).

Per task, on its evaluation queries at budget 5: the share of random designs scoring above 0
(against each query's own targets), random search's and Bayesian optimisation's mean best score,
and the share of first witness draws that simulate. The bounds: in-domain, at least 30 % of random
designs above 0 and both baselines between 0.10 and 0.90 per task, averaging 0.35-0.65;
out-of-domain, BO averaging 0.05-0.35. Runs on local backends, no Ray.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import asdict, dataclass

from simworkers.query import Query, drafts
from simworkers.result import SimResult
from simworkers.task import Task
from system.agent.episode import Episode
from system.agent.policies import BayesOpt, Policy, RandomSearch
from system.evaluation.checks import LocalRunner

BUDGET = 5
RANDOM_NONZERO_MIN = 0.30
TASK_RANGE = (0.10, 0.90)  # each in-domain task, BO and random alike
IN_DOMAIN_AVERAGE = (0.35, 0.65)
OUT_OF_DOMAIN_BO_AVERAGE = (0.05, 0.35)


@dataclass(frozen=True)
class Calibration:
    task: str
    domain: str
    queries: int
    witness_rate: float  # first witness draws that simulate with every spec metric
    random_nonzero: float  # random designs scoring above 0 against their query's targets
    random_best: float  # random search, mean best score at the budget
    bo_best: float
    ms_per_sim: float

    def problems(self) -> list[str]:
        out = []
        if self.witness_rate < 0.5:
            out.append(f"only {self.witness_rate:.0%} of witnesses simulate: the reference region is fragile")
        if self.domain != "in":
            return out
        if self.random_nonzero < RANDOM_NONZERO_MIN:
            out.append(f"{self.random_nonzero:.0%} of random designs score above 0 (< {RANDOM_NONZERO_MIN:.0%})")
        lo, hi = TASK_RANGE
        for name, value in (("random best@5", self.random_best), ("BO best@5", self.bo_best)):
            if not lo <= value <= hi:
                out.append(f"{name} {value:.3f} is outside [{lo}, {hi}]")
        return out

    def to_json(self) -> dict:
        return {**asdict(self), "problems": self.problems()}


def suite_problems(rows: list[Calibration]) -> list[str]:
    """The per-task problems and the suite averages' (in-domain BO and random, out-of-domain BO)."""
    out = [f"{r.task}: {p}" for r in rows for p in r.problems()]
    return out + average_problems(
        {r.task: r.random_best for r in rows if r.domain == "in"},
        {r.task: r.bo_best for r in rows if r.domain == "in"},
        {r.task: r.bo_best for r in rows if r.domain == "out"},
    )


def average_problems(random_in: dict, bo_in: dict, bo_out: dict) -> list[str]:
    out = []
    checks = (("in-domain random", random_in, IN_DOMAIN_AVERAGE), ("in-domain BO", bo_in, IN_DOMAIN_AVERAGE))
    for name, values, (lo, hi) in (*checks, ("out-of-domain BO", bo_out, OUT_OF_DOMAIN_BO_AVERAGE)):
        if values and not lo <= (avg := statistics.fmean(values.values())) <= hi:
            out.append(f"{name} average {avg:.3f} is outside [{lo}, {hi}]")
    return out


def witness_rate(task: Task, seeds: list[int], runner: LocalRunner) -> float:
    """The share of queries whose first witness draw simulates with every spec metric (the
    others are redrawn)."""
    firsts = [next(drafts(task, seed)) for seed in seeds]
    results = runner.run(task, [d.witness for d in firsts])
    return sum(d.finish(r) is not None for d, r in zip(firsts, results)) / len(firsts)


async def run_local(policy: Policy, task: Task, queries: list[Query], runner: LocalRunner) -> list[Episode]:
    async def simulate(task: Task, design: dict) -> SimResult:
        return (await asyncio.to_thread(runner.run, task, [design]))[0]

    gate = asyncio.Semaphore(2 * runner.workers)

    async def one(query: Query) -> Episode:
        async with gate:
            return await policy.run(task, query, "n/a", BUDGET, simulate)

    return list(await asyncio.gather(*(one(q) for q in queries)))


def calibrate(task: Task, queries: list[Query], runner: LocalRunner, bo: Policy | None = None) -> Calibration:
    random_eps = asyncio.run(run_local(RandomSearch(), task, queries, runner))
    bo_eps = asyncio.run(run_local(bo or BayesOpt(), task, queries, runner))
    designs = [t for e in random_eps for t in e.designs]
    times = sorted(t.result.elapsed_s for t in designs if t.result.ok) or [0.0]
    return Calibration(
        task=task.name,
        domain=task.domain,
        queries=len(queries),
        witness_rate=witness_rate(task, [q.seed for q in queries], runner),
        random_nonzero=sum(t.score > 0 for t in designs) / len(designs),
        random_best=statistics.fmean(e.best_score for e in random_eps),
        bo_best=statistics.fmean(e.best_score for e in bo_eps),
        ms_per_sim=1000 * statistics.median(times),
    )
