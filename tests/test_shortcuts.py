"""The shortcut baselines (SPEC section 2) on the real simulator: centre and reference propose their
one design, constant the design that the training queries favour, lookup the witnesses of the
nearest training queries; each is an ordinary `tlgrpo eval` policy."""

import asyncio
import math

import numpy as np
import pytest

from simworkers.catalog import load_task
from simworkers.front import build_front, centre_design
from simworkers.query import front_query, seed_for
from system.agent.registry import make_policy
from system.agent.reward import score_metrics, score_table
from system.agent.shortcuts import CONSTANT_QUERIES, choose_constant, target_vector
from system.evaluation.checks import LocalRunner
from system.evaluation.datasets import QuerySource


@pytest.fixture(scope="module")
def ota(tmp_path_factory):
    """ota5t's front stored in a folder of its own, and a query source reading it."""
    from simworkers.dataset import write_front

    task = load_task("ota5t_generic")
    root = tmp_path_factory.mktemp("data")
    with LocalRunner("shared") as runner:
        front = build_front(task, runner.run)
    write_front(task, front, root)
    return task, front, root


def source_for(root, sim):
    return QuerySource(sim, root=root, on_the_fly=True)


def test_score_table_equals_scoring_one_by_one():
    import dataclasses
    import random

    from simworkers.catalog import all_tasks

    random.seed(0)
    for task in all_tasks():
        queries = []
        for _ in range(12):
            factor = math.exp(random.uniform(-1, 1))
            queries.append(
                tuple(
                    dataclasses.replace(
                        s, lo=None if s.lo is None else s.lo * factor, hi=None if s.hi is None else s.hi * factor
                    )
                    for s in task.specs
                )
            )
        designs = []
        for k in range(20):
            m = {s.metric: (s.lo or s.hi) * math.exp(random.uniform(-1.5, 1.5)) for s in task.specs}
            if k % 5 == 1:
                m[task.specs[0].metric] = float("nan")
            if k % 6 == 2:
                m[task.specs[-1].metric] = -abs(m[task.specs[-1].metric])
            designs.append(None if k % 7 == 0 else m)
        table = score_table(queries, designs)
        for i, m in enumerate(designs):
            for j, q in enumerate(queries):
                expected = 0.0 if m is None else score_metrics(q, m).value
                assert table[i, j] == pytest.approx(expected, abs=1e-12), (task.name, i, j)


def test_centre_and_reference_propose_their_one_design(ota, sim):
    task, front, _root = ota
    query = front_query(task, seed_for("eval", 0), front)
    for name, design in (("centre", centre_design(task)), ("reference", task.reference())):
        policy = make_policy(name)
        sim.calls.clear()
        episode = asyncio.run(policy.run(task, query, "n/a", 5, sim))
        assert [t.design for t in episode.designs] == [design]
        assert len(sim.calls) == 2  # the initial design, then the one design


def test_constant_is_the_candidate_with_the_best_mean_on_the_training_queries(ota, sim):
    task, front, root = ota
    training = [front_query(task, seed_for("train", i), front) for i in range(CONSTANT_QUERIES)]
    index, mean = choose_constant(task, front, training)
    candidates = front.simulated()
    assert len(candidates) >= 500 and front.index_of("reference") in candidates
    assert front.index_of("centre") in candidates
    # the same choice, scored the slow way on a sample of candidates that includes it
    sample = sorted({index, *candidates[::25]})
    means = {i: np.mean([score_metrics(q.specs, front.metrics[i]).value for q in training]) for i in sample}
    assert max(means, key=means.get) == index and means[index] == pytest.approx(mean)

    policy = make_policy("constant")
    asyncio.run(policy.prepare(task, source_for(root, sim)))
    for seed in (seed_for("eval", 0), seed_for("eval", 1)):
        episode = asyncio.run(policy.run(task, front_query(task, seed, front), "n/a", 5, sim))
        assert [t.design for t in episode.designs] == [front.designs[index]]


def test_lookup_tries_the_witnesses_of_the_nearest_training_queries(ota, sim):
    task, front, root = ota
    policy = make_policy("lookup")
    source = source_for(root, sim)
    asyncio.run(policy.prepare(task, source))
    training = asyncio.run(source.training_set(task))
    assert len(training) >= 900
    targets = np.array([target_vector(q.specs) for q in training])
    mean, sd = targets.mean(axis=0), targets.std(axis=0)
    sd = np.where(sd > 0, sd, np.inf)
    query = front_query(task, seed_for("eval", 3), front)
    distance = np.linalg.norm((targets - mean) / sd - (np.array(target_vector(query.specs)) - mean) / sd, axis=1)
    nearest = training[int(np.argmin(distance))].witness
    tried = policy.nearest(task, query, 5)
    assert tried[0] == nearest and len(tried) == 5
    assert len({tuple(d.items()) for d in tried}) == 5  # distinct witnesses
    episode = asyncio.run(policy.run(task, query, "n/a", 5, sim))
    designs = [t.design for t in episode.designs]
    assert designs == tried[: len(designs)]
    assert len(designs) == 5 or episode.designs[-1].score >= 1.0  # it stops once every spec is met
    assert policy.applies_to(task) and not policy.applies_to(load_task("opamp2s_generic"))


def test_a_shortcut_used_before_it_was_prepared_says_so(ota, sim):
    task, front, _root = ota
    query = front_query(task, seed_for("eval", 0), front)
    with pytest.raises(RuntimeError, match="prepare"):
        asyncio.run(make_policy("constant").run(task, query, "n/a", 5, sim))


def test_constant_on_a_task_with_no_training_set_draws_its_queries_from_the_front(tmp_path, sim):
    """Out-of-domain tasks are never trained on and have no stored training set; the constant
    baseline is chosen on the same training queries the front gives any task."""
    from simworkers.dataset import read_front
    from system.evaluation.datasets import build_datasets

    task = load_task("opamp2s_generic")
    with LocalRunner("shared") as runner:
        build_datasets([(task, "eval", 2)], runner, tmp_path)
    source = QuerySource(sim, root=tmp_path)  # reads datasets; none for training
    front = read_front(task, tmp_path)
    training = asyncio.run(source.training_set(task, 5))
    assert training == [front_query(task, seed_for("train", i), front) for i in range(5)]
    policy = make_policy("constant")
    asyncio.run(policy.prepare(task, source))
    assert policy.design(task) in front.designs
