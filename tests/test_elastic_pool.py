"""The elastic pool on a real two-node Ray cluster: a node that joins during a run with `sim`
resources gets simulation actors and work; when it dies during the next run, its requests are
retried on the head and nothing is lost. Runs in its own process: it starts its own cluster."""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SCRIPT = textwrap.dedent("""
    import asyncio, json, time
    import ray
    from ray.cluster_utils import Cluster
    from simworkers.pool import SimPool
    from simworkers.sizing import PoolSizer
    from simworkers.catalog import load_task
    from system.evaluation.checks import random_designs

    store = 80 * 2**20
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "resources": {"sim": 1}, "object_store_memory": store, "include_dashboard": False})
    ray.init(address=cluster.address, log_to_driver=False)
    task = load_task("telescopic_sky130")
    designs = random_designs(task, 80, seed=9)

    async def main():
        pool = SimPool(backend="shared", sizer=PoolSizer(min_actors=1, max_actors=4, idle_s=2.0))
        before = pool.stats().actors + pool.stats().starting
        job = asyncio.ensure_future(pool.map(task, designs))
        while sum(pool.stats().completed.values()) < 10:
            await asyncio.sleep(0.05)
        head_nodes = set(pool.actor_nodes().values())
        worker = cluster.add_node(num_cpus=2, resources={"sim": 2}, object_store_memory=store)
        results = await job
        nodes = pool.actor_nodes()
        during = pool.stats().actors + pool.stats().starting
        on_new = [w for w in {r.worker for r in results}]
        await asyncio.sleep(2.6)
        pool.autoscale()
        await asyncio.sleep(0.6)
        pool.autoscale()
        after_idle = pool.stats().actors + pool.stats().starting
        # the worker node dies in the middle of the next run: its requests go elsewhere. The head
        # holds one `sim` unit, so every actor beyond the first runs on the worker node.
        job = asyncio.ensure_future(pool.map(task, designs))
        deadline = time.monotonic() + 60
        while pool.stats().actors < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        done = sum(pool.stats().completed.values())
        while sum(pool.stats().completed.values()) < done + 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        deaths_before, retried_before = pool.stats().actor_deaths, pool.stats().retried
        cluster.remove_node(worker)
        second = await job
        stats = pool.stats()
        pool.shutdown()
        return {"before": before, "during": during, "after_idle": after_idle, "answered": len(results),
                "statuses": sorted({r.status for r in results}),
                "new_node_actors": sum(n not in head_nodes for n in nodes.values()),
                "workers": len(on_new), "second_answered": len(second),
                "second_statuses": sorted({r.status for r in second}),
                "infrastructure": sum(r.reason.startswith("infrastructure") for r in second),
                "node_death_actor_deaths": stats.actor_deaths - deaths_before,
                "node_death_retried": stats.retried - retried_before}

    print("RESULT " + json.dumps(asyncio.run(main())))
    ray.shutdown()
    cluster.shutdown()
""")


def test_a_node_that_joins_gets_actors_and_work():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    line = next((s for s in out.stdout.splitlines() if s.startswith("RESULT ")), None)
    assert line is not None, out.stderr[-3000:]
    report = json.loads(line.removeprefix("RESULT "))
    assert report["before"] == 1  # the head offers one `sim` unit
    assert report["answered"] == 80 and set(report["statuses"]) <= {"ok", "failed"}
    assert report["new_node_actors"] >= 1 and report["during"] >= 2
    assert report["workers"] >= 2  # results came from actors on both nodes
    assert report["after_idle"] < report["during"]  # idle actors are retired
    # a node that dies mid-run: nothing lost, nothing answered as an infrastructure failure
    assert report["second_answered"] == 80 and set(report["second_statuses"]) <= {"ok", "failed"}
    assert report["infrastructure"] == 0
    assert report["node_death_actor_deaths"] >= 1 and report["node_death_retried"] >= 1
