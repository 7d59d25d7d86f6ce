"""`tlgrpo eval` end to end: Bayesian optimisation and random search on two tasks, real Ray and ngspice."""

import json
from pathlib import Path

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
    assert "no eval dataset (front rule) for task ota5t_generic" in err
    assert "tlgrpo data build --tasks ota5t_generic" in err
    assert "--on-the-fly" in err
    assert main([*args, "--on-the-fly", "--out", str(tmp_path / "b")]) == 0
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["settings"]["query_source"] == "built from seeds"
    # the episodes' simulations only: the witnesses come from the front shipped with the task
    assert results["settings"]["simulations"] == 2 * (1 + 2)


def test_a_killed_evaluation_continues_with_resume_and_runs_only_what_is_missing(ray_cluster, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["eval", "--policy", "random", "--tasks", "ota5t_generic", "--queries", "4", "--budget", "2"]
    args += ["--workers", "2", "--on-the-fly", "--out", str(out)]
    assert main(args) == 0
    complete = json.loads((out / "results.json").read_text())
    lines = (out / "episodes.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == 4
    # as a kill leaves it: no tables, one finished episode, one that failed on infrastructure, one cut short
    failed = {**json.loads(lines[1]), "failure": "endpoint down"}
    (out / "results.json").unlink()
    (out / "episodes.jsonl").write_text(lines[0] + json.dumps(failed) + "\n" + lines[2][:40])
    capsys.readouterr()

    assert main(args) == 2
    assert "holds an evaluation already: add --resume" in capsys.readouterr().err
    changed = [a if a != "4" else "3" for a in args]
    assert main([*changed, "--resume"]) == 2
    assert "was started with queries = 4, not 3" in capsys.readouterr().err
    assert main([*args, "--dtype", "bfloat16", "--resume"]) == 2
    assert "was started with dtype = 'auto', not 'bfloat16'" in capsys.readouterr().err
    identity = json.loads((out / "eval.json").read_text())
    del identity["dtype"]  # as an evaluation started before eval.json had the key left it
    (out / "eval.json").write_text(json.dumps(identity))

    assert main([*args, "--resume"]) == 0
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["settings"]["resumed_episodes"] == 1  # the failed and the cut-short ones ran again
    assert resumed["rows"][0]["per_task"] == complete["rows"][0]["per_task"]  # random search repeats exactly
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert [e["seed"] for e in episodes] == [json.loads(line)["seed"] for line in lines]
    assert episodes[0] == json.loads(lines[0]) and not any(e["failure"] for e in episodes)

    # more queries a task: the evaluation grows, its finished episodes kept, only the new queries run
    grown = [a if a != "4" else "6" for a in args]
    assert main([*grown, "--resume"]) == 0
    assert "4 -> 6 queries a task; the finished episodes are kept" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["resumed_episodes"] == 4 and results["settings"]["queries"] == 6
    assert results["queries_per_task"] == 6
    assert json.loads((out / "eval.json").read_text())["queries"] == 6
    more = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert more[:4] == episodes and len(more) == 6
    assert main([*args, "--resume"]) == 2  # and never back to fewer
    assert "was started with queries = 6, not 4" in capsys.readouterr().err


def test_an_endpoint_that_fails_leaves_its_episodes_to_resume(ray_cluster, tmp_path, capsys):
    from tests.fake_openai import fake_openai

    with fake_openai([503] * 12) as url:  # both episodes' first request and their 5 retries
        args = ["eval", "--policy", f"openai:{url}", "--tasks", "ota5t_generic", "--queries", "2"]
        args += ["--budget", "3", "--workers", "2", "--on-the-fly", "--out", str(tmp_path / "eval")]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "2 episodes ended on an infrastructure fault" in err and "HTTP 503" in err and "--resume" in err
        assert main([*args, "--resume"]) == 0  # the endpoint is back
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["failures"] == {} and results["rows"][0]["episodes"] == 2


VLLM_PYTHON = Path(__file__).resolve().parent.parent / ".venv-vllm" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="no .venv-vllm: set-up ran with TLGRPO_SKIP_VLLM=1")
def test_a_vllm_policy_is_evaluated_through_the_vllm_engine_with_the_seed_it_was_given(ray_cluster, tmp_path, capsys):
    """`--policy vllm:PATH`: the rollout actors' engine, under .venv-vllm, evaluates a local model,
    both protocols; --seed seeds its sampler, so the same seed and request order repeat the replies."""
    from system.models.tiny import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny")
    args = ["eval", "--policy", f"vllm:{tiny}", "--tasks", "ota5t_generic", "--queries", "2", "--budget", "2"]
    args += ["--protocol", "multi-turn", "--protocol", "st-iter", "--max-new-tokens", "16"]
    args += ["--workers", "1", "--concurrency", "1", "--on-the-fly"]
    replies = []
    for run, seed in enumerate(("3", "3", "4")):
        out = tmp_path / f"eval-{run}"
        assert main([*args, "--seed", seed, "--out", str(out)]) == 0
        episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
        assert len(episodes) == 4 and {e["policy"] for e in episodes} == {f"vllm:{tiny}"}
        assert {e["protocol"] for e in episodes} == {"multi-turn", "st-iter"}
        assert all(len(e["turns"]) >= 2 and not e["failure"] for e in episodes)
        assert all(e["n_tokens"] > 0 for e in episodes if e["protocol"] == "multi-turn")
        replies.append(sorted((e["protocol"], e["seed"], [t["reply"] for t in e["turns"][1:]]) for e in episodes))
    capsys.readouterr()
    assert replies[0] == replies[1]  # seed 3 twice
    assert replies[0] != replies[2]  # seed 4
    assert len({str(r[2]) for r in replies[0]}) > 1  # sampled, not one reply for every query


@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="no .venv-vllm: set-up ran with TLGRPO_SKIP_VLLM=1")
def test_a_vllm_engine_that_cannot_start_stops_the_evaluation_with_one_line(ray_cluster, tmp_path, capsys):
    from system.models.tiny import build_tiny_model

    broken = build_tiny_model(tmp_path / "tiny")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    args = ["eval", "--policy", f"vllm:{broken}", "--tasks", "ota5t_generic", "--queries", "1", "--budget", "1"]
    assert main([*args, "--workers", "1", "--on-the-fly", "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"tlgrpo: vllm:{broken}: the vLLM engine failed (")
    assert err[-1].endswith("the finished episodes are kept: run the same command with --resume")
