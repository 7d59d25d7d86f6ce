"""The `tlgrpo` command, run as a user would."""

import json
import subprocess
import sys

import pytest

from system.cli import main


def tlgrpo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "system.cli", *args], capture_output=True, text=True, timeout=300)


def test_simulate_reference_prints_metrics_specs_and_score():
    out = tlgrpo("simulate", "ota5t_generic", "--reference")
    assert out.returncode == 0, out.stderr
    assert "gain_db = " in out.stdout
    assert "met" in out.stdout
    assert "score: 1.0000" in out.stdout


def test_simulate_json_of_a_random_design(capsys):
    assert main(["simulate", "telescopic_sky130", "--random", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] in ("ok", "failed")
    assert 0.0 <= report["score"] <= 1.0
    assert set(report["params"]) >= {"w_in", "vbn"}


def test_simulate_params_from_file(tmp_path, capsys):
    from simworkers.catalog import load_task

    design = load_task("ota5t_generic").reference()
    path = tmp_path / "design.json"
    path.write_text(json.dumps({**design, "ibias": "15uA"}))
    assert main(["simulate", "ota5t_generic", "--params", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["ibias"] == "15uA"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "no_such_task", "--reference"], "unknown task 'no_such_task'"),
        (["simulate", "ota5t_generic", "--params", "{not json"], "--params: not valid JSON"),
        (["simulate", "ota5t_generic", "--params", "[1, 2]"], "expected a JSON object"),
        (["pdk", "install", "tsmc7"], "unknown process 'tsmc7'"),
        (["bench", "prefill", "--python", "/no/such/python"], "--python /no/such/python: no interpreter there"),
        (["eval", "--policy", "random", "--top-p", "1.5"], "argument --top-p: 1.5 is not in (0, 1]"),
        (["eval", "--policy", "random", "--top-p", "most"], "argument --top-p: 'most' is not a number"),
    ],
)
def test_bad_arguments_get_one_clear_line_and_exit_2(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as stop:  # argparse's own refusal
        code = stop.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_invalid_design_exits_2_and_says_why():
    out = tlgrpo("simulate", "ota5t_generic", "--params", '{"w_in": "huge"}')
    assert out.returncode == 2
    assert "status: invalid" in out.stdout and "w_in" in out.stdout


def test_bad_count_is_refused_by_the_parser():
    out = tlgrpo("tasks", "check", "--random", "0")
    assert out.returncode == 2 and "--random" in out.stderr


def test_tasks_list_json(capsys):
    assert main(["tasks", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["task"] for r in rows}
    assert {"ota5t_generic", "telescopic_sky130", "ldo_sky130"} <= names
    assert all(r["ms_per_sim"] > 0 and r["reference_status"] == "ok" for r in rows)


def test_tasks_check_exit_status(capsys):
    assert main(["tasks", "check", "ota5t_generic", "--random", "50"]) == 0
    assert "pass" in capsys.readouterr().out
    assert main(["tasks", "check", "ota5t_generic", "--random", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["queries"] == "front"  # the front shipped with the task


@pytest.mark.parametrize(
    "policy, words",
    [
        ("hf:/no/such/model/folder", ["hf:/no/such/model/folder", "no model folder"]),
        ("openai:http://127.0.0.1:9/v1", ["openai:http://127.0.0.1:9/v1", "cannot be reached"]),
    ],
)
def test_eval_refuses_a_policy_it_cannot_reach_in_one_line(policy, words):
    out = tlgrpo("eval", "--policy", policy, "--tasks", "ota5t_generic", "--queries", "1")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert all(w in out.stderr for w in words), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
