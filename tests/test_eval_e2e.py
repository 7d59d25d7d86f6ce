"""`tlgrpo eval` end to end: Bayesian optimisation and random search on two tasks, real Ray and ngspice."""

import json

import pytest

from simworkers.catalog import resolve_tasks
from system.cli import main

pytestmark = pytest.mark.ray


def test_eval_writes_table_json_episodes_and_plots(ray_cluster, tmp_path, capsys):
    out = tmp_path / "eval"
    data = ["--data", str(tmp_path / "data")]
    build = ["data", "build", "--tasks", "ota5t_generic,opamp2s_generic", "--eval-queries", "3", "--train-queries", "0"]
    assert main([*build, *data]) == 0
    code = main(
        [
            "eval",
            *data,
            "--policy",
            "bo",
            "--policy",
            "random",
            "--tasks",
            "ota5t_generic,opamp2s_generic",
            "--queries",
            "3",
            "--budget",
            "4",
            "--workers",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| bo (n/a) |" in printed and "| random (n/a) |" in printed
    results = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in results["rows"]} == {"bo (n/a)", "random (n/a)"}
    # tasks x queries x methods x (1 + T): the witnesses come from the dataset, never simulated again
    assert results["settings"]["simulations"] == 2 * 3 * 2 * 5
    for row in results["rows"]:
        assert set(row["per_task"]) == {"ota5t_generic", "opamp2s_generic"}
        assert {"in-domain", "out-of-domain", "all"} <= set(row["averages"])
        assert len(row["history_best"]) == 5 and row["history_best"] == sorted(row["history_best"])
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 12
    assert all(e["simulations"] == 5 for e in episodes)
    # both methods saw the same held-out queries
    seeds = {(e["task"], e["seed"]) for e in episodes if e["policy"] == "bo"}
    assert seeds == {(e["task"], e["seed"]) for e in episodes if e["policy"] == "random"}
    assert all(seed >= 1_000_000_000 for _, seed in seeds)
    assert (out / "turn_curves.png").stat().st_size > 10_000
    assert "initial design (turn 0)" in (out / "results.md").read_text()


def test_task_sets():
    names = [t.name for t in resolve_tasks(["in-domain"])]
    assert len(names) >= 8 and "opamp2s_sky130" not in names
    assert next(t.name for t in resolve_tasks(["out-of-domain"])).startswith("opamp2s")
    with pytest.raises(KeyError):
        resolve_tasks(["no_such_task"])


def test_bad_policy_is_one_clear_line(capsys):
    assert main(["eval", "--policy", "gpt5", "--tasks", "ota5t_generic", "--queries", "1"]) == 2
    assert "unknown policy 'gpt5'" in capsys.readouterr().err


def test_eval_without_a_dataset_says_what_to_run_and_builds_queries_on_request(ray_cluster, tmp_path, capsys):
    args = ["eval", "--policy", "random", "--tasks", "ota5t_generic", "--queries", "2", "--budget", "2"]
    args += ["--workers", "2", "--data", str(tmp_path / "none")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no eval dataset for task ota5t_generic" in err and "tlgrpo data build --tasks ota5t_generic" in err
    assert "--on-the-fly" in err
    assert main([*args, "--on-the-fly", "--out", str(tmp_path / "b")]) == 0
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["settings"]["query_source"] == "built from seeds"
    assert results["settings"]["simulations"] >= 2 * (1 + 2) + 2  # episodes, and a witness per query
