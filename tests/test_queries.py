"""Near-reference queries (the learning tests' rule; tests/test_front.py has the default front
rule): reproducible from (task, seed), disjoint splits, and attainable: each carries a witness
design whose metrics meet every target, found by redrawing when a witness fails."""

import dataclasses

import pytest

from simworkers.catalog import load_task
from simworkers.query import (
    EVAL_SEED_BASE,
    WITNESS_ATTEMPTS,
    QueryError,
    build_queries,
    near_reference_query,
    seed_for,
    simulate_here,
)
from simworkers.result import SimResult
from system.agent.reward import score_metrics


def queries(task, split, count):
    return [near_reference_query(task, seed_for(split, i)) for i in range(count)]


def test_queries_are_reproducible_and_splits_disjoint():
    task = load_task("ota5t_generic")
    a, b = queries(task, "train", 10), queries(task, "train", 10)
    assert a == b
    train = {seed_for("train", i) for i in range(500)}
    held_out = {seed_for("eval", i) for i in range(500)}
    assert not train & held_out
    assert all(s < EVAL_SEED_BASE for s in train) and all(s >= EVAL_SEED_BASE for s in held_out)
    assert all(q.split == "eval" for q in queries(task, "eval", 3))


def task_spec(task, metric):
    return next(s for s in task.specs if s.metric == metric)


def test_witness_meets_every_target_and_targets_sit_within_the_margin_of_its_metrics():
    task = load_task("telescopic_sky130")
    for q in queries(task, "train", 30):
        for p in task.params:
            assert p.lo <= q.initial[p.name] <= p.hi
            assert p.lo <= q.witness[p.name] <= p.hi
        assert score_metrics(q.specs, q.witness_metrics).value == 1.0
        for spec in q.specs:
            m = q.witness_metrics[spec.metric]
            if spec.fixed:  # a requirement: the nominal target, whatever the witness's slack
                assert spec.lo == task_spec(task, spec.metric).lo and spec.hi == task_spec(task, spec.metric).hi
                continue
            if spec.kind == "min":
                assert (spec.lo <= m and (m - spec.lo) <= spec.margin * abs(m) * 1.01 + 1e-12) or spec.log
            if spec.kind == "max":
                assert spec.hi >= m


def test_the_initial_design_is_random_and_the_witness_near_the_reference():
    task = load_task("ota5t_generic")
    q1, q2 = near_reference_query(task, seed_for("train", 1)), near_reference_query(task, seed_for("train", 2))
    assert q1.initial != q2.initial and q1.witness != q2.witness
    for p in task.params:
        ratio = q1.witness[p.name] / p.reference
        assert 1 / (1 + task.witness_spread) - 1e-9 <= ratio <= 1 + task.witness_spread + 1e-9


def test_a_failing_witness_is_redrawn_and_a_task_that_never_simulates_is_refused():
    task = load_task("ota5t_generic")
    calls = []

    def flaky(t, design):
        calls.append(design)
        if len(calls) <= 2:
            return SimResult("failed", {}, "no convergence")
        return simulate_here(t, design)

    query = near_reference_query(task, seed_for("eval", 3), flaky)
    assert len(calls) == 3 and query.witness == calls[-1]  # the third draw is the witness kept
    assert score_metrics(query.specs, query.witness_metrics).value == 1.0
    # the same seed built in one parallel sweep gives the same query (redraws included)
    first_two_fail = iter([False, False])

    def batch(t, designs):
        return [
            SimResult("failed", {}, "x") if next(first_two_fail, True) is False else simulate_here(t, d)
            for d in designs
        ]

    assert build_queries(task, [seed_for("eval", 3)], batch) == [query]
    with pytest.raises(QueryError, match=f"none of {WITNESS_ATTEMPTS} witness designs"):
        near_reference_query(task, seed_for("eval", 4), lambda t, d: SimResult("timeout", {}, "hung"))


def test_a_witness_missing_a_spec_metric_is_not_kept():
    task = load_task("ota5t_generic")

    def no_pm(t, design):
        result = simulate_here(t, design)
        return dataclasses.replace(result, metrics={k: v for k, v in result.metrics.items() if k != "pm"})

    with pytest.raises(QueryError):
        near_reference_query(task, seed_for("eval", 5), no_pm)
