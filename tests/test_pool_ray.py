"""The simulation pool on a real local Ray cluster with real ngspice."""

import asyncio
from collections import Counter

import pytest

from simworkers.catalog import load_task
from simworkers.pool import SimPool
from system.evaluation.checks import random_designs

pytestmark = pytest.mark.ray


def test_pool_answers_every_request_like_a_local_backend(ray_cluster):
    from simworkers.backends import make_backend

    task = load_task("ota5t_generic")
    designs = random_designs(task, 40, seed=3)

    async def run():
        pool = SimPool(2)
        try:
            return await pool.map(task, designs), pool.stats()
        finally:
            pool.shutdown()

    results, stats = asyncio.run(run())
    with make_backend("shared") as sim:
        local = [sim.simulate(task, d) for d in designs[:5]]
    assert len(results) == 40
    assert stats.completed == dict(Counter(r.status for r in results))
    assert len({r.worker for r in results}) == 2  # both actors worked
    for a, b in zip(results, local):
        assert a.status == b.status and a.metrics == pytest.approx(b.metrics)


def test_killed_actor_loses_nothing_and_is_replaced(ray_cluster):
    task = load_task("telescopic_sky130")
    designs = random_designs(task, 40, seed=5)

    async def run():
        pool = SimPool(2, max_batch=1)
        try:
            job = asyncio.ensure_future(pool.map(task, designs))
            while sum(pool.stats().completed.values()) < 4:
                await asyncio.sleep(0.05)
            pool.kill_actor("sim-1")
            results = await job
            return results, pool.stats()
        finally:
            pool.shutdown()

    results, stats = asyncio.run(run())
    assert len(results) == 40
    assert all(r.status in ("ok", "failed") for r in results)
    assert not any(r.reason.startswith("infrastructure") for r in results)
    assert stats.actor_deaths == 1
    assert stats.retried >= 1
    assert stats.actors + stats.starting == 2  # replaced


def test_invalid_request_comes_back_invalid_through_the_pool(ray_cluster):
    task = load_task("ota5t_generic")

    async def run():
        pool = SimPool(1)
        try:
            return await pool.submit(task, {**task.reference(), "w_in": "1e-3\n.endc"})
        finally:
            pool.shutdown()

    result = asyncio.run(run())
    assert result.status == "invalid" and "w_in" in result.reason


def test_an_elastic_pool_whose_last_actor_dies_grows_back_with_no_new_request(ray_cluster):
    """Every request is queued at once; the only actor dies; nothing else is submitted. The pool
    must still start another actor when the cluster frees the dead one's unit."""
    from simworkers.sizing import PoolSizer

    task = load_task("ota5t_generic")
    designs = random_designs(task, 30, seed=7)

    async def run():
        pool = SimPool(sizer=PoolSizer(min_actors=1, max_actors=1), max_batch=1)
        try:
            job = asyncio.ensure_future(pool.map(task, designs))
            while sum(pool.stats().completed.values()) < 3:
                await asyncio.sleep(0.02)
            pool.kill_actor(next(iter(pool.book.live_actors())))
            return await asyncio.wait_for(job, 90), pool.stats()
        finally:
            pool.shutdown()

    results, stats = asyncio.run(run())
    assert len(results) == 30 and stats.actor_deaths == 1
    assert not any(r.reason.startswith("infrastructure") for r in results)
