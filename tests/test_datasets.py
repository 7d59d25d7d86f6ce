"""Query datasets on disk: built once (idempotent), under either rule, read back exactly, refused
when the task changed or another rule built them, and every stored witness meets its query's
targets when simulated again."""

import shutil
from pathlib import Path

import pytest

from simworkers.catalog import BUILTIN_TASKS, all_tasks, load_task
from simworkers.dataset import (
    DatasetError,
    dataset_path,
    load_queries,
    read_front,
    read_queries,
    shipped_front_path,
    stored_count,
)
from simworkers.query import front_query, near_reference_query, seed_for
from system.agent.reward import score_result
from system.evaluation.checks import LocalRunner
from system.evaluation.datasets import build_datasets, default_plan


def test_build_is_idempotent_and_reads_back_the_same_queries(tmp_path, runner):
    task = load_task("ota5t_generic")
    plan = [(task, "eval", 6), (task, "train", 4)]
    first = build_datasets(plan, runner, tmp_path)  # the front shipped with the task: nothing simulated
    assert [(b.split, b.kept) for b in first] == [("front", True), ("eval", False), ("train", False)]
    assert first[0].path == shipped_front_path(task)
    stamp = dataset_path(task, "eval", tmp_path).stat().st_mtime_ns
    again = build_datasets(plan, runner, tmp_path)
    assert [(b.split, b.kept) for b in again] == [("front", True), ("eval", True), ("train", True)]
    assert dataset_path(task, "eval", tmp_path).stat().st_mtime_ns == stamp
    stored = load_queries(task, "eval", 6, root=tmp_path)
    front = read_front(task, tmp_path)
    assert stored == [front_query(task, seed_for("eval", i), front) for i in range(6)]
    # the near-reference rule's datasets live beside them; neither reads the other's
    near = build_datasets([(task, "eval", 2)], runner, tmp_path, rule="near-reference")
    assert [(b.split, b.kept) for b in near] == [("eval", False)]
    assert load_queries(task, "eval", 2, root=tmp_path, rule="near-reference") == [
        near_reference_query(task, seed_for("eval", i)) for i in range(2)
    ]
    assert load_queries(task, "eval", 2, root=tmp_path) == stored[:2]
    # training wraps around its set (the next epoch); evaluation refuses to ask for more than was built
    assert load_queries(task, "train", 3, start=3, root=tmp_path)[1] == read_queries(task, "train", tmp_path)[0]
    with pytest.raises(DatasetError, match="--eval-queries 7"):
        load_queries(task, "eval", 7, root=tmp_path)


def test_a_dataset_whose_task_changed_is_refused(tmp_path, runner, monkeypatch):
    folder = tmp_path / "tasks" / "my_ota"
    shutil.copytree(BUILTIN_TASKS / "ota5t_generic", folder, ignore=shutil.ignore_patterns("front.parquet"))
    task_file = folder / "task.yaml"
    task_file.write_text(task_file.read_text().replace("name: ota5t_generic", "name: my_ota"))
    task = load_task(folder)
    build_datasets([(task, "eval", 3)], runner, tmp_path / "data")
    assert stored_count(task, "eval", tmp_path / "data") == 3
    task_file.write_text(task_file.read_text().replace("timeout_s: 10", "timeout_s: 11"))
    changed = load_task(folder)
    assert changed.fingerprint != task.fingerprint
    assert stored_count(changed, "eval", tmp_path / "data") == 0
    with pytest.raises(DatasetError, match=r"my_ota changed since it was built.*tlgrpo data build --tasks my_ota"):
        load_queries(changed, "eval", 3, root=tmp_path / "data")
    with pytest.raises(DatasetError, match="no train dataset"):
        load_queries(changed, "train", 1, root=tmp_path / "data")


def test_missing_dataset_names_the_command_to_run(tmp_path):
    with pytest.raises(DatasetError, match=r"run `tlgrpo data build --tasks tia_gf180`"):
        load_queries(load_task("tia_gf180"), "eval", 1, root=tmp_path)


def test_the_default_plan_spreads_training_over_in_domain_tasks():
    tasks = all_tasks()
    plan = default_plan(tasks, 10_000, 100)
    train = [(t.name, n) for t, split, n in plan if split == "train"]
    assert {t.name for t in tasks if t.domain == "in"} == {name for name, _ in train}
    assert sum(n for _, n in train) >= 10_000
    assert all(n == 100 for _, split, n in plan if split == "eval") and len(plan) == len(tasks) + len(train)


@pytest.mark.parametrize("rule", ["near-reference", "front"])
def test_stored_witnesses_meet_their_targets_when_simulated_again(tmp_path, runner, rule):
    """A sample of evaluation queries: built, stored, read back, and each witness simulated anew
    on another backend scores 1.0 against its query's targets. Near-reference: every task (two
    queries each); front: the fast tasks (a front is about a thousand simulations)."""
    fast = ("ota5t_generic", "tia_gf180", "opamp2s_generic")
    tasks = sorted((t for t in all_tasks() if rule != "front" or t.name in fast), key=lambda t: t.name)
    n = 2 if rule == "near-reference" else 8
    build_datasets([(t, "eval", n) for t in tasks], runner, tmp_path, rule=rule)
    with LocalRunner("shared", workers=1) as fresh:
        for task in tasks:
            for query in load_queries(task, "eval", n, root=tmp_path, rule=rule):
                result = fresh.run(task, [query.witness])[0]
                assert score_result(query.specs, result).value == 1.0, (task.name, query.seed, result.reason)
                for name, value in query.witness_metrics.items():
                    assert result.metrics[name] == pytest.approx(value, rel=1e-6, abs=1e-15)


def test_data_cli_builds_and_shows(tmp_path, capsys):
    from system.cli.main import main

    args = ["data", "build", "--tasks", "ota5t_generic", "--eval-queries", "3", "--train-queries", "2"]
    assert main([*args, "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "eval  ota5t_generic" in out and "built" in out and "on the front" in out
    assert main([*args, "--data", str(tmp_path)]) == 0
    again = capsys.readouterr().out
    assert "kept (fresh)" in again and "front ota5t_generic" in again
    assert main([*args, "--data", str(tmp_path), "--rule", "near-reference"]) == 0
    assert main(["data", "show", "--tasks", "ota5t_generic", "--data", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "3 queries (front)" in shown and "2 queries (front)" in shown and "3 queries (near-reference)" in shown
    assert "front ota5t_generic" in shown and "training / " in shown
    assert Path(tmp_path / "front" / "eval" / "ota5t_generic.parquet").is_file()
    assert "(shipped with the task)" in shown and not Path(tmp_path / "fronts" / "ota5t_generic.parquet").exists()


def test_training_reads_its_queries_from_the_dataset_in_order(tmp_path, runner):
    """The data position is the step: B queries per step, the tasks in turn, each task's
    training queries in order (wrapping around the set), the same on a rerun."""
    import asyncio

    from system.config import load_config
    from system.evaluation.datasets import QuerySource
    from system.rl.train import Trainer

    tasks = [load_task("ota5t_generic"), load_task("tia_gf180")]
    build_datasets([(t, "train", 3) for t in tasks], runner, tmp_path / "data")
    overrides = [
        f"run.out_dir={tmp_path / 'run'}",
        "tasks.queries=dataset",
        f"tasks.data_dir={tmp_path / 'data'}",
        "algorithm.queries_per_step=4",
    ]
    trainer = Trainer(load_config("tiny-cpu", overrides))
    source = QuerySource(None, root=tmp_path / "data")
    steps = [asyncio.run(trainer.queries(step, source)) for step in range(3)]
    stored = {t.name: read_queries(t, "train", tmp_path / "data") for t in tasks}
    flat = [(task.name, query) for step in steps for task, query in step]
    assert [name for name, _ in flat] == ["ota5t_generic", "tia_gf180"] * 6
    for i, (name, query) in enumerate(flat):
        assert query == stored[name][(i // 2) % 3]  # in order, wrapping after 3
    assert asyncio.run(trainer.queries(1, source)) == steps[1]
