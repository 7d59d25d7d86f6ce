"""Task difficulty, measured and checked against SPEC section 2 (`tlgrpo tasks calibrate`).

Per task, on its evaluation queries at budget 5: random search's and Bayesian optimisation's
mean best score, the share of random designs scoring above 0 (against each query's own
targets), and the shortcut baselines that must not win: `centre`, `reference` and `constant`
(system/agent/shortcuts.py). The bounds:

- every task, in and out of domain: centre, reference and constant each below random search;
- in domain: at least 20 % of random designs above 0, random and BO each in 0.10-0.90 per task
  and averaging 0.35-0.65, constant averaging at most 0.35;
- out of domain: BO averaging 0.05-0.35.

Runs on local backends, no Ray. `FrontEstimate` gives the shortcuts and random search from a
front's own samples with no simulation, for tuning a task file quickly.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import asdict, dataclass

import numpy as np

from simworkers.query import Query
from simworkers.result import SimResult
from simworkers.task import Task
from system.agent.episode import Episode
from system.agent.policies import BayesOpt, Policy, RandomSearch
from system.agent.shortcuts import Centre, Constant, Reference
from system.evaluation.checks import LocalRunner

BUDGET = 5
RANDOM_NONZERO_MIN = 0.20
TASK_RANGE = (0.10, 0.90)  # each in-domain task, BO and random alike
IN_DOMAIN_AVERAGE = (0.35, 0.65)
CONSTANT_IN_DOMAIN_MAX = 0.35
OUT_OF_DOMAIN_BO_AVERAGE = (0.05, 0.35)
SHORTCUTS_BELOW_RANDOM = ("centre", "reference", "constant")


def shortcut_problems(random_best: float, shortcuts: dict[str, float]) -> list[str]:
    return [
        f"{name} {value:.3f} is not below random best@5 {random_best:.3f}"
        for name, value in shortcuts.items()
        if value >= random_best
    ]


def in_domain_problems(random_nonzero: float, scores: dict[str, float]) -> list[str]:
    out = []
    if random_nonzero < RANDOM_NONZERO_MIN:
        out.append(f"{random_nonzero:.0%} of random designs score above 0 (< {RANDOM_NONZERO_MIN:.0%})")
    lo, hi = TASK_RANGE
    out += [f"{name} {value:.3f} is outside [{lo}, {hi}]" for name, value in scores.items() if not lo <= value <= hi]
    return out


@dataclass(frozen=True)
class Calibration:
    task: str
    domain: str
    queries: int
    random_nonzero: float  # random designs scoring above 0 against their query's targets
    random_best: float  # random search, mean best score at the budget
    bo_best: float
    centre: float
    reference: float
    constant: float
    ms_per_sim: float

    def problems(self) -> list[str]:
        shortcuts = {"centre": self.centre, "reference": self.reference, "constant": self.constant}
        out = shortcut_problems(self.random_best, shortcuts)
        if self.domain == "in":
            out += in_domain_problems(
                self.random_nonzero, {"random best@5": self.random_best, "BO best@5": self.bo_best}
            )
        return out

    def to_json(self) -> dict:
        return {**asdict(self), "problems": self.problems()}


def suite_problems(rows: list[Calibration]) -> list[str]:
    """The per-task problems and the suite averages' (in-domain BO, random and constant,
    out-of-domain BO)."""
    out = [f"{r.task}: {p}" for r in rows for p in r.problems()]
    return out + average_problems(
        {r.task: r.random_best for r in rows if r.domain == "in"},
        {r.task: r.bo_best for r in rows if r.domain == "in"},
        {r.task: r.bo_best for r in rows if r.domain == "out"},
        {r.task: r.constant for r in rows if r.domain == "in"},
    )


def average_problems(random_in: dict, bo_in: dict, bo_out: dict, constant_in: dict | None = None) -> list[str]:
    out = []
    checks = (("in-domain random", random_in, IN_DOMAIN_AVERAGE), ("in-domain BO", bo_in, IN_DOMAIN_AVERAGE))
    for name, values, (lo, hi) in (*checks, ("out-of-domain BO", bo_out, OUT_OF_DOMAIN_BO_AVERAGE)):
        if values and not lo <= (avg := statistics.fmean(values.values())) <= hi:
            out.append(f"{name} average {avg:.3f} is outside [{lo}, {hi}]")
    if constant_in and (avg := statistics.fmean(constant_in.values())) > CONSTANT_IN_DOMAIN_MAX:
        out.append(f"in-domain constant average {avg:.3f} is above {CONSTANT_IN_DOMAIN_MAX}")
    return out


async def run_local(
    policy: Policy, task: Task, queries: list[Query], runner: LocalRunner, supply=None
) -> list[Episode]:
    async def simulate(task: Task, design: dict) -> SimResult:
        return (await asyncio.to_thread(runner.run, task, [design]))[0]

    if supply is not None:
        await policy.prepare(task, supply)
    gate = asyncio.Semaphore(2 * runner.workers)

    async def one(query: Query) -> Episode:
        async with gate:
            return await policy.run(task, query, "n/a", BUDGET, simulate)

    return list(await asyncio.gather(*(one(q) for q in queries)))


def calibrate(task: Task, queries: list[Query], runner: LocalRunner, supply, bo: Policy | None = None) -> Calibration:
    """`supply` gives the constant baseline its front and training queries (a QuerySource)."""

    def best(policy: Policy) -> tuple[float, list[Episode]]:
        episodes = asyncio.run(run_local(policy, task, queries, runner, supply))
        return statistics.fmean(e.best_score for e in episodes), episodes

    random_best, random_eps = best(RandomSearch())
    designs = [t for e in random_eps for t in e.designs]
    times = sorted(t.result.elapsed_s for t in designs if t.result.ok) or [0.0]
    return Calibration(
        task=task.name,
        domain=task.domain,
        queries=len(queries),
        random_nonzero=sum(t.score > 0 for t in designs) / len(designs),
        random_best=random_best,
        bo_best=best(bo or BayesOpt())[0],
        centre=best(Centre())[0],
        reference=best(Reference())[0],
        constant=best(Constant())[0],
        ms_per_sim=1000 * statistics.median(times),
    )


@dataclass(frozen=True)
class FrontEstimate:
    """The shortcuts and random search at budget 5, estimated from a front's own samples with no
    simulation (`tasks calibrate --from-front`): a quick check while tuning a task file. Random
    search is estimated by five of the sampled designs per query, which are uniform over the box
    as its draws are; BO is not estimated."""

    task: str
    domain: str
    queries: int
    front: int
    cells: int
    centre: float
    reference: float
    constant: float
    random_best: float
    random_nonzero: float

    def problems(self) -> list[str]:
        shortcuts = {"centre": self.centre, "reference": self.reference, "constant": self.constant}
        out = shortcut_problems(self.random_best, shortcuts)
        if self.domain == "in":
            out += in_domain_problems(self.random_nonzero, {"random best@5": self.random_best})
        return out

    def to_json(self) -> dict:
        return {**asdict(self), "problems": self.problems()}


def estimate_from_front(task: Task, front, queries: int = 100, seed: int = 0) -> FrontEstimate:
    from simworkers.query import front_query, seed_for
    from system.agent.reward import score_table
    from system.agent.shortcuts import CONSTANT_QUERIES, choose_constant

    evaluation = [front_query(task, seed_for("eval", i), front).specs for i in range(queries)]
    training = [front_query(task, seed_for("train", i), front) for i in range(CONSTANT_QUERIES)]
    best, _ = choose_constant(task, front, training)

    def mean_score(index: int) -> float:
        return float(score_table(evaluation, [front.metrics[index]]).mean())

    samples = [i for i, o in enumerate(front.origin) if o == "sample"]
    rng = np.random.default_rng(seed)
    picks = np.array([rng.choice(samples, BUDGET, replace=False) for _ in evaluation])
    table = score_table(evaluation, [front.metrics[i] for i in samples])
    where = {s: k for k, s in enumerate(samples)}
    drawn = np.array([[table[where[i], q] for i in row] for q, row in enumerate(picks)])
    return FrontEstimate(
        task.name,
        task.domain,
        queries,
        front.size,
        front.n_cells,
        mean_score(front.index_of("centre")),
        mean_score(front.index_of("reference")),
        mean_score(best),
        float(drawn.max(axis=1).mean()),
        float((drawn > 0).mean()),
    )
