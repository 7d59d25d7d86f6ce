"""`tlgrpo eval` end to end: Bayesian optimisation and random search on two tasks, real Ray and ngspice."""

import json

import pytest

from simworkers.catalog import resolve_tasks
from system.cli import main

pytestmark = pytest.mark.ray


def test_eval_writes_table_json_episodes_and_plots(ray_cluster, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
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
    assert results["settings"]["simulations"] == 2 * 3 * 2 * 5  # tasks x queries x methods x (1 + T)
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
