"""Difficulty is calibrated to SPEC section 2, on the committed baseline table (no shortcut wins,
random search and BO in their bands), and the tools that measure it (`tasks calibrate`, the
estimate from a front, the BO configurations) behave."""

import json
from pathlib import Path

import pytest

from simworkers.catalog import all_tasks, load_task
from system.agent.policies import BO_CONFIGS, BO_DEFAULT, BayesOpt
from system.agent.registry import make_policy
from system.evaluation.calibration import (
    CONSTANT_IN_DOMAIN_MAX,
    IN_DOMAIN_AVERAGE,
    RANDOM_NONZERO_MIN,
    SHORTCUTS_BELOW_RANDOM,
    TASK_RANGE,
    Calibration,
    average_problems,
    suite_problems,
)

BASELINES = Path(__file__).parent.parent / "docs" / "baselines"


def test_calibration_flags_a_reward_desert_a_giveaway_and_a_winning_shortcut():
    def row(name, domain, nonzero, random, bo, centre=0.1, reference=0.1, constant=0.2):
        return Calibration(name, domain, 100, nonzero, random, bo, centre, reference, constant, 3.0)

    desert = row("a", "in", 0.02, 0.05, 0.04, 0.0, 0.0, 0.01)
    giveaway = row("b", "in", 0.9, 0.97, 0.99)
    fine = row("c", "in", 0.4, 0.5, 0.55)
    constant_wins = row("d", "in", 0.4, 0.5, 0.55, constant=0.52)
    assert any("score above 0" in p for p in desert.problems())
    assert any("random best@5 0.050" in p for p in desert.problems())
    assert any("BO best@5 0.990" in p for p in giveaway.problems())
    assert fine.problems() == []
    assert constant_wins.problems() == ["constant 0.520 is not below random best@5 0.500"]
    out = row("e", "out", 0.0, 0.1, 0.2, centre=0.12, reference=0.05, constant=0.05)
    assert out.problems() == ["centre 0.120 is not below random best@5 0.100"]  # shortcuts bound out of domain too
    averages = suite_problems([desert, fine])
    assert any(p.startswith("in-domain random average") for p in averages)
    assert IN_DOMAIN_AVERAGE[0] > 0.05 * 2
    high_constant = [row(n, "in", 0.4, 0.6, 0.6, constant=0.4) for n in "xyz"]
    assert "in-domain constant average 0.400 is above 0.35" in suite_problems(high_constant)


def test_the_committed_baseline_table_is_inside_the_calibration_bounds():
    from system.evaluation.taskdoc import merge_results, queries_text

    found = sorted(BASELINES.glob("eval-*/results.json"))
    results = merge_results(found)
    described = queries_text(found)  # what docs/tasks.md says the table's columns rest on
    assert all(f"{n} evaluation queries per" in described for n in {results["settings"]["queries"]})
    assert results["settings"]["queries"] >= 30 and results["settings"]["budget"] == 5
    assert results["settings"]["query_rule"] == "front"
    domains = {t.name: t.domain for t in all_tasks()}
    assert set(results["tasks"]) == set(domains), "docs/baselines/ must cover every task"
    rows = {r["method"].split(" ")[0]: r for r in results["rows"]}
    random, bo = rows["random"], rows["bo"]
    lo, hi = TASK_RANGE
    for task, domain in domains.items():
        for shortcut in SHORTCUTS_BELOW_RANDOM:
            assert rows[shortcut]["per_task"][task] < random["per_task"][task], (shortcut, task)
        if domain != "in":
            assert task not in rows["lookup"]["per_task"]
            continue
        assert task in rows["lookup"]["per_task"]
        assert lo <= random["per_task"][task] <= hi, task
        assert lo <= bo["per_task"][task] <= hi, task
        assert random["nonzero_share"][task] >= RANDOM_NONZERO_MIN, task
    in_domain = [t for t, d in domains.items() if d == "in"]
    out_domain = [t for t, d in domains.items() if d == "out"]
    assert not average_problems(
        {t: random["per_task"][t] for t in in_domain},
        {t: bo["per_task"][t] for t in in_domain},
        {t: bo["per_task"][t] for t in out_domain},
        {t: rows["constant"]["per_task"][t] for t in in_domain},
    )
    assert rows["constant"]["averages"]["in-domain"] <= CONSTANT_IN_DOMAIN_MAX


def test_bo_configurations_are_named_and_the_default_is_the_bo_policy():
    assert make_policy("bo").name == "bo" and BO_DEFAULT in BO_CONFIGS
    assert make_policy("bo:ucb").name == "bo:ucb"
    with pytest.raises(ValueError, match="unknown BO configuration 'nope'"):
        BayesOpt("nope")


def test_bo_spends_exactly_the_budget_and_starts_space_filling(sim):
    import asyncio

    from simworkers.query import near_reference_query, seed_for

    task = load_task("ota5t_generic")
    query = near_reference_query(task, seed_for("eval", 0))
    sim.calls.clear()
    episode = asyncio.run(BayesOpt("ei-lhs2").run(task, query, "n/a", 4, sim))
    assert len(episode.designs) == 4 and len(sim.calls) == 5  # the initial design, then the budget
    assert all(task.param(n).lo <= v <= task.param(n).hi for d in sim.calls for n, v in d.items())


def test_a_users_own_task_is_calibrated_like_the_shipped_ones(tmp_path, monkeypatch, capsys):
    import shutil

    from simworkers.catalog import BUILTIN_TASKS
    from system.cli.main import main

    folder = tmp_path / "my_tasks" / "my_ota"
    shutil.copytree(BUILTIN_TASKS / "ota5t_generic", folder, ignore=shutil.ignore_patterns("front.parquet"))
    task_file = folder / "task.yaml"
    task_file.write_text(task_file.read_text().replace("name: ota5t_generic", "name: my_ota"))
    monkeypatch.setenv("TLGRPO_TASK_PATH", str(tmp_path / "my_tasks"))
    data = ["--data", str(tmp_path / "data")]
    assert main(["data", "build", "--tasks", "my_ota", "--eval-queries", "4", "--train-queries", "0", *data]) == 0
    capsys.readouterr()
    code = main(["tasks", "calibrate", "my_ota", "--queries", "4", "--json", *data])
    report = json.loads(capsys.readouterr().out)
    (row,) = report["tasks"]
    assert row["task"] == "my_ota" and row["queries"] == 4 and not report["estimated_from_front"]
    for key in ("random_nonzero", "random_best", "bo_best", "centre", "reference", "constant"):
        assert 0 <= row[key] <= 1, key
    assert code == (1 if report["problems"] else 0)
    # the quick estimate reads the same stored front and simulates nothing
    code = main(["tasks", "calibrate", "my_ota", "--queries", "20", "--from-front", "--json", *data])
    quick = json.loads(capsys.readouterr().out)
    (estimate,) = quick["tasks"]
    assert quick["estimated_from_front"] and estimate["front"] > 0 and estimate["cells"] > 0
    assert code == (1 if quick["problems"] else 0)


def test_the_estimate_from_a_front_matches_scoring_its_samples_one_by_one(tmp_path):
    """The estimate's numbers, recomputed the slow way from the same front and queries."""
    import numpy as np

    from simworkers.front import build_front
    from simworkers.query import front_query, seed_for
    from system.agent.reward import score_metrics
    from system.agent.shortcuts import CONSTANT_QUERIES, choose_constant
    from system.evaluation.calibration import BUDGET, estimate_from_front
    from system.evaluation.checks import LocalRunner

    task = load_task("tia_gf180")
    with LocalRunner("shared") as runner:
        front = build_front(task, runner.run)
    estimate = estimate_from_front(task, front, queries=20, seed=3)
    evaluation = [front_query(task, seed_for("eval", i), front) for i in range(20)]

    def mean(index):
        return float(np.mean([score_metrics(q.specs, front.metrics[index]).value for q in evaluation]))

    assert estimate.centre == pytest.approx(mean(front.index_of("centre")))
    assert estimate.reference == pytest.approx(mean(front.index_of("reference")))
    training = [front_query(task, seed_for("train", i), front) for i in range(CONSTANT_QUERIES)]
    assert estimate.constant == pytest.approx(mean(choose_constant(task, front, training)[0]))
    samples = [i for i, o in enumerate(front.origin) if o == "sample"]
    rng = np.random.default_rng(3)
    best = [
        max(score_metrics(q.specs, front.metrics[i]).value for i in rng.choice(samples, BUDGET, replace=False))
        for q in evaluation
    ]
    assert estimate.random_best == pytest.approx(float(np.mean(best)))
