"""`tlgrpo bench sim`: simulation throughput, raw and through the Ray pool, in one run.

For each task and backend: the same random designs run (a) one after another on one backend in
this process, no Ray, and (b) through a SimPool with one actor per core. With no task named it
measures a quick set that spans the kinds of testbench (QUICK_TASKS: op + ac on generic models,
op + ac on sky130's, a transient); `all` names every task (minutes). The headline
`pool_efficiency` = pool throughput / (cores x raw throughput): 1.0 means the pool adds nothing
to the simulations themselves and uses every core.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from simworkers.backends import make_backend
from simworkers.pool import SimPool
from simworkers.task import Task
from system.evaluation.checks import random_designs
from system.runtime import init_ray

QUICK_TASKS = ("ota5t_generic", "telescopic_sky130", "mdac_sky130")


@dataclass
class SimBench:
    task: str
    backend: str
    sims: int
    raw_ms_median: float
    raw_per_s: float
    pool_per_s: float
    pool_efficiency: float
    ok_fraction: float


def _raw(task: Task, backend: str, designs: list[dict]) -> tuple[float, list[float], int]:
    with make_backend(backend) as sim:
        for design in designs[:2]:  # start ngspice and load the circuit before timing
            sim.simulate(task, design)
        times, ok = [], 0
        start = time.perf_counter()
        for design in designs:
            t0 = time.perf_counter()
            ok += sim.simulate(task, design).ok
            times.append(time.perf_counter() - t0)
        return time.perf_counter() - start, times, ok


async def _pooled(pool: SimPool, task: Task, designs: list[dict]) -> float:
    await pool.warm_up(task)
    start = time.perf_counter()
    await pool.map(task, designs)
    return time.perf_counter() - start


def run_bench(
    tasks: list[Task],
    backends: list[str],
    sims: int,
    cores: int | None = None,
    on_row: Callable[[SimBench], None] | None = None,
) -> dict:
    import ray

    cores = cores or os.cpu_count() or 1
    started_ray = not ray.is_initialized()
    if started_ray:
        init_ray(cores)
    rows: list[SimBench] = []
    try:
        for backend in backends:
            pool = SimPool(cores, backend)
            try:
                for task in tasks:
                    designs = random_designs(task, sims, seed=7)
                    raw_s, times, ok = _raw(task, backend, designs)
                    pool_s = asyncio.run(_pooled(pool, task, designs))
                    raw_rate, pool_rate = sims / raw_s, sims / pool_s
                    rows.append(
                        SimBench(
                            task.name,
                            backend,
                            sims,
                            1000 * statistics.median(times),
                            raw_rate,
                            pool_rate,
                            pool_rate / (cores * raw_rate),
                            ok / sims,
                        )
                    )
                    if on_row:
                        on_row(rows[-1])
            finally:
                pool.shutdown()
    finally:
        if started_ray:
            ray.shutdown()
    summary = {}
    for backend in backends:
        mine = [r for r in rows if r.backend == backend]
        raw_total = sum(r.sims / r.raw_per_s for r in mine)
        pool_total = sum(r.sims / r.pool_per_s for r in mine)
        summary[backend] = {"pool_efficiency": raw_total / (cores * pool_total)}
    headline = summary.get("shared", summary[backends[0]])["pool_efficiency"]
    return {
        "cores": cores,
        "sims_per_task": sims,
        "pool_efficiency": headline,
        "backends": summary,
        "rows": [asdict(r) for r in rows],
    }
