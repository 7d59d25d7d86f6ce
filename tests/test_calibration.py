"""Difficulty is calibrated to SPEC section 2, on the committed baseline table, and the tools that
measure it (the checks, `tasks calibrate`, the BO configurations) behave."""

import json
from pathlib import Path

import numpy as np
import pytest

from simworkers.catalog import all_tasks, load_task
from system.agent.policies import BO_CONFIGS, BO_DEFAULT, BayesOpt, latin_hypercube, make_policy
from system.evaluation.calibration import (
    IN_DOMAIN_AVERAGE,
    RANDOM_NONZERO_MIN,
    TASK_RANGE,
    Calibration,
    average_problems,
    suite_problems,
)

BASELINES = Path(__file__).parent.parent / "docs" / "baselines" / "results.json"


def test_calibration_flags_a_reward_desert_and_a_giveaway():
    desert = Calibration("a", "in", 100, 1.0, 0.02, 0.05, 0.04, 3.0)
    giveaway = Calibration("b", "in", 100, 1.0, 0.9, 0.97, 0.99, 3.0)
    fine = Calibration("c", "in", 100, 1.0, 0.4, 0.5, 0.55, 3.0)
    assert any("score above 0" in p for p in desert.problems())
    assert any("random best@5 0.050" in p for p in desert.problems())
    assert any("BO best@5 0.990" in p for p in giveaway.problems())
    assert fine.problems() == []
    assert Calibration("d", "out", 100, 1.0, 0.0, 0.0, 0.2, 3.0).problems() == []  # no per-task bound out of domain
    averages = suite_problems([desert, fine])
    assert any(p.startswith("in-domain random average") for p in averages)
    assert IN_DOMAIN_AVERAGE[0] > 0.05 * 2


def test_the_committed_baseline_table_is_inside_the_calibration_bounds():
    results = json.loads(BASELINES.read_text())
    assert results["settings"]["queries"] >= 100 and results["settings"]["budget"] == 5
    domains = {t.name: t.domain for t in all_tasks()}
    assert set(results["tasks"]) == set(domains), "docs/baselines/ must cover every task"
    rows = {r["method"].split(" ")[0]: r for r in results["rows"]}
    random, bo = rows["random"], rows["bo"]
    lo, hi = TASK_RANGE
    for task, domain in domains.items():
        if domain != "in":
            continue
        assert lo <= random["per_task"][task] <= hi, task
        assert lo <= bo["per_task"][task] <= hi, task
        assert random["nonzero_share"][task] >= RANDOM_NONZERO_MIN, task
    in_domain = [t for t, d in domains.items() if d == "in"]
    out_domain = [t for t, d in domains.items() if d == "out"]
    assert not average_problems(
        {t: random["per_task"][t] for t in in_domain},
        {t: bo["per_task"][t] for t in in_domain},
        {t: bo["per_task"][t] for t in out_domain},
    )


def test_latin_hypercube_puts_one_point_in_each_stratum():
    points = latin_hypercube(5, 7, np.random.default_rng(0))
    assert points.shape == (5, 7) and (points >= 0).all() and (points < 1).all()
    for column in points.T:
        assert sorted(np.floor(column * 5).astype(int)) == list(range(5))


def test_bo_configurations_are_named_and_the_default_is_the_bo_policy():
    assert make_policy("bo").name == "bo" and BO_DEFAULT in BO_CONFIGS
    assert make_policy("bo:ucb").name == "bo:ucb"
    with pytest.raises(ValueError, match="unknown BO configuration 'nope'"):
        BayesOpt("nope")


def test_bo_spends_exactly_the_budget_and_starts_space_filling(sim):
    import asyncio

    from simworkers.query import make_query, seed_for

    task = load_task("ota5t_generic")
    query = make_query(task, seed_for("eval", 0))
    sim.calls.clear()
    episode = asyncio.run(BayesOpt("ei-lhs2").run(task, query, "n/a", 4, sim))
    assert len(episode.designs) == 4 and len(sim.calls) == 5  # the initial design, then the budget
    assert all(task.param(n).lo <= v <= task.param(n).hi for d in sim.calls for n, v in d.items())


def test_a_users_own_task_is_calibrated_like_the_shipped_ones(tmp_path, monkeypatch, capsys):
    import shutil

    from simworkers.catalog import BUILTIN_TASKS
    from system.cli.main import main

    folder = tmp_path / "my_tasks" / "my_ota"
    shutil.copytree(BUILTIN_TASKS / "ota5t_generic", folder)
    task_file = folder / "task.yaml"
    task_file.write_text(task_file.read_text().replace("name: ota5t_generic", "name: my_ota"))
    monkeypatch.setenv("TLGRPO_TASK_PATH", str(tmp_path / "my_tasks"))
    data = ["--data", str(tmp_path / "data")]
    assert main(["data", "build", "--tasks", "my_ota", "--eval-queries", "4", "--train-queries", "0", *data]) == 0
    capsys.readouterr()
    code = main(["tasks", "calibrate", "my_ota", "--queries", "4", "--json", *data])
    report = json.loads(capsys.readouterr().out)
    (row,) = report["tasks"]
    assert row["task"] == "my_ota" and row["queries"] == 4 and row["witness_rate"] == 1.0
    assert 0 <= row["random_nonzero"] <= 1 and 0 <= row["random_best"] <= 1 and 0 <= row["bo_best"] <= 1
    assert code == (1 if report["problems"] else 0)
