"""Settings studies on a learning test (system/rl/study.py): which runs a study makes and which of
them share the first run's warm-up, what a finished run's row says (steps and seconds to pass, a
step's time by part), that a stopped study reads its finished runs instead of running them again;
and `warmup.start_from`, which lets a run start from another's warm-up."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from system.config import ConfigError, load_config
from system.rl.study import StudyError, parse_axes, plan_study, run_study, study_row

ROOT = Path(__file__).resolve().parents[1]


def test_vary_specs_are_parsed_and_a_malformed_one_is_refused_by_name():
    assert parse_axes(["learner.lr=5e-4, 2e-3", "algorithm.group_size=4"]) == {
        "learner.lr": ["5e-4", "2e-3"],
        "algorithm.group_size": ["4"],
    }
    for bad in ("learner.lr", "=1", "learner.lr=", "learner.lr=,"):
        with pytest.raises(ConfigError, match="write KEY=V1,V2"):
            parse_axes([bad])


def test_a_study_shares_the_first_runs_warm_up_only_where_the_warm_up_would_be_the_same(tmp_path):
    axes = {"learner.lr": ["5e-4"], "algorithm.budget": ["3"], "warmup.epochs": ["6"], "algorithm.group_size": ["4"]}
    plan = plan_study("smoke", tmp_path, axes, ["run.eval_queries=8"])
    labels = [label for label, _, _ in plan]
    assert labels == [
        "as shipped",
        "learner.lr=5e-4",
        "algorithm.budget=3",
        "warmup.epochs=6",
        "algorithm.group_size=4",
    ]
    shared = f"warmup.start_from={tmp_path / 'as-shipped' / 'warmup' / 'final'}"
    settings = {label: s for label, _, s in plan}
    for label in labels:  # the base overrides and the lifted time budget everywhere
        assert settings[label][0] == "run.eval_queries=8" and "pass.max_seconds=1e9" in settings[label]
    assert shared in settings["learner.lr=5e-4"] and shared in settings["algorithm.group_size=4"]
    # the warm-up trains on episodes of T turns, and on its own settings: those train their own
    for own in ("as shipped", "algorithm.budget=3", "warmup.epochs=6"):
        assert not any(s.startswith("warmup.start_from") for s in settings[own]), own
    assert [folder.name for _, folder, _ in plan][:2] == ["as-shipped", "learner.lr=5e-4"]


def test_a_studys_seeds_train_again_from_their_settings_first_warm_up(tmp_path):
    plan = plan_study("smoke", tmp_path, {"learner.lr": ["5e-4"], "algorithm.budget": ["3"]}, [], seeds=2)
    runs = {folder.name: settings for _, folder, settings in plan}
    assert list(runs) == [
        "as-shipped",
        "as-shipped-seed1",
        "learner.lr=5e-4",
        "learner.lr=5e-4-seed1",
        "algorithm.budget=3",
        "algorithm.budget=3-seed1",
    ]
    shipped = f"warmup.start_from={tmp_path / 'as-shipped' / 'warmup' / 'final'}"
    own = f"warmup.start_from={tmp_path / 'algorithm.budget=3' / 'warmup' / 'final'}"
    assert shipped in runs["as-shipped-seed1"] and shipped in runs["learner.lr=5e-4-seed1"]
    assert own in runs["algorithm.budget=3-seed1"] and shipped not in runs["algorithm.budget=3-seed1"]
    for name, settings in runs.items():
        assert ("run.seed=1" in settings) == name.endswith("-seed1")


def test_a_bad_value_in_a_study_is_refused_before_any_run_starts(tmp_path):
    with pytest.raises(ConfigError, match="group_size"):
        run_study("smoke", tmp_path, {"learner.lr": ["5e-4"], "algorithm.group_size": ["1"]}, [])
    assert not list(tmp_path.glob("*.log"))


def _finished_run(folder: Path, values: list[float], threshold: float | None = 0.75) -> None:
    """A learning test's files as `tlgrpo learn-test` leaves them: an evaluation every 2 steps."""
    folder.mkdir(parents=True)
    curve = [
        {"step": 2 * i, "seconds": 100.0 + 30.0 * i, "value": v, "random": 0.27, "centre": 0.94}
        for i, v in enumerate(values)
    ]
    steps = 2 * (len(values) - 1)
    passed = None if threshold is None else values[-1] >= threshold
    result = {"name": "smoke", "passed": passed, "metric": "best", "value": values[-1], "threshold": threshold}
    result |= {"steps": steps, "seconds": curve[-1]["seconds"], "curve": curve}
    (folder / "learning_test.json").write_text(json.dumps(result))
    lines = []
    for step in range(steps):
        m = {"step": step, "time/rollout_s": 6.0, "time/learn_s": 3.0, "time/weight_sync_s": 0.5}
        m |= {"time/step_s": 10.0, "format_error_rate": 0.5 - 0.1 * step, "entropy": 1.0 - 0.1 * step}
        lines.append(json.dumps(m))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_a_runs_row_says_when_it_passed_and_where_a_steps_seconds_went(tmp_path):
    _finished_run(tmp_path / "a", [0.2, 0.5, 0.8])
    row = study_row("as shipped", tmp_path / "a")
    assert (
        row.seed is None and row.passed is True and row.steps_to_pass == 4 and row.seconds_to_pass == 60.0
    )  # from the first evaluation
    assert row.seconds == 60.0 and row.steps == 4
    assert (row.rollout_s, row.learn_s, row.sync_s, row.step_s) == (6.0, 3.0, 0.5, 10.0)
    assert row.eval_s == pytest.approx((60.0 - 4 * 10.0) / 2)  # what the steps did not spend, per evaluation
    assert row.format_errors_first == 0.5 and row.format_errors_last == pytest.approx(0.2)
    assert row.baselines == {"random": 0.27, "centre": 0.94}
    assert [p["seconds"] for p in row.curve] == [0.0, 30.0, 60.0]
    # a run that recorded its held-out evaluations' own seconds: those (step 0's, before training, aside)
    for step, wall in ((0, 99.0), (2, 12.0), (4, 14.0)):
        (tmp_path / "a" / "eval" / f"step_{step:06d}").mkdir(parents=True)
        result = {"rows": [], "settings": {"step": step, "wall_s": wall}}
        (tmp_path / "a" / "eval" / f"step_{step:06d}" / "results.json").write_text(json.dumps(result))
    assert study_row("as shipped", tmp_path / "a").eval_s == pytest.approx(13.0)
    _finished_run(tmp_path / "b", [0.2, 0.4, 0.3])
    failed = study_row("learner.lr=2e-3", tmp_path / "b")
    assert failed.passed is False and failed.steps_to_pass is None and failed.seconds_to_pass is None
    assert failed.last_value == 0.3


def test_a_stopped_study_reads_its_finished_runs_and_writes_the_table_and_the_curves(tmp_path):
    _finished_run(tmp_path / "as-shipped", [0.3, 0.6, 0.9])
    _finished_run(tmp_path / "as-shipped-seed1", [0.3, 0.8, 0.9])
    _finished_run(tmp_path / "learner.lr=2e-3", [0.3, 0.1, 0.0])
    _finished_run(tmp_path / "learner.lr=2e-3-seed1", [0.3, 0.5, 0.8])
    rows = run_study("smoke", tmp_path, {"learner.lr": ["2e-3"]}, [], seeds=2)
    assert [(r.label, r.seed) for r in rows] == [
        ("as shipped", None),
        ("as shipped", 1),
        ("learner.lr=2e-3", None),
        ("learner.lr=2e-3", 1),
    ]
    table = (tmp_path / "study.md").read_text()
    # per setting over its seeds (a run that never passed counts as never), then each run
    assert "| as shipped | 2 of 2 | 4, 2 | 4 | 60 | 10.0 | 0.90, 0.90 |" in table  # the slower half
    assert "| learner.lr=2e-3 | 1 of 2 | -, 4 | never | never | 10.0 | 0.00, 0.80 |" in table
    assert (
        "| as shipped | - | passed | 4 | 60 |" in table
        and "| learner.lr=2e-3 | - | failed | - | - | 0.000 (4) |" in table
    )
    assert (tmp_path / "study_curves.png").stat().st_size > 0
    assert len(json.loads((tmp_path / "study.json").read_text())) == 4


def test_a_run_that_leaves_no_result_stops_the_study_and_names_its_log(tmp_path, monkeypatch):
    import system.rl.study as study

    monkeypatch.setattr(study.sys, "executable", "/bin/false")  # the run's process fails at once
    with pytest.raises(StudyError, match=r"as shipped ended without a result: see .*as-shipped.log"):
        run_study("smoke", tmp_path, {"learner.lr": ["2e-3"]}, [])


def test_a_run_starts_from_another_runs_warm_up_and_a_folder_without_a_model_is_refused(tmp_path):
    from system.rl.train import Trainer

    warm = tmp_path / "other" / "warmup" / "final"
    warm.mkdir(parents=True)
    (warm / "config.json").write_text("{}")
    cfg = load_config("tiny-cpu", [f"run.out_dir={tmp_path / 'run'}", f"warmup.start_from={warm}"])
    assert cfg.warmup.wanted and cfg.warmup.episodes == 0
    assert Trainer(cfg).warm_up() == str(warm.resolve())
    assert not (tmp_path / "run" / "warmup").exists()  # nothing trained
    empty = load_config("tiny-cpu", [f"run.out_dir={tmp_path / 'run'}", f"warmup.start_from={tmp_path}"])
    with pytest.raises(ConfigError, match=f"warmup.start_from: {tmp_path} holds no model"):
        Trainer(empty).warm_up()


def test_the_cli_runs_a_study_and_refuses_a_bad_vary(tmp_path):
    _finished_run(tmp_path / "as-shipped", [0.3, 0.9])
    _finished_run(tmp_path / "algorithm.group_size=4", [0.3, 0.5])
    cmd = [sys.executable, "-m", "system.cli", "learn-test", "smoke"]
    proc = subprocess.run(
        [*cmd, "--vary", "algorithm.group_size=4", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "algorithm.group_size=4" in proc.stdout and f"study: {tmp_path}/study.md" in proc.stdout
    bad = subprocess.run([*cmd, "--vary", "algorithm.group_size"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "tlgrpo: --vary 'algorithm.group_size': write KEY=V1,V2" in bad.stderr
    none = subprocess.run([*cmd, "--vary", "learner.lr=1e-3", "--seeds", "0"], cwd=ROOT, capture_output=True, text=True)
    assert none.returncode == 2 and "tlgrpo: --seeds 0: a study needs at least 1 run per setting" in none.stderr


def test_finished_runs_are_drawn_side_by_side_and_a_folder_without_a_run_is_refused(tmp_path):
    _finished_run(tmp_path / "a", [0.2, 0.9])
    _finished_run(tmp_path / "b", [0.2, 0.1])
    cmd = [sys.executable, "-m", "system.cli", "learn-test", "two runs"]
    runs = ["--plot", f"lr 1e-3={tmp_path / 'a'}", "--plot", str(tmp_path / "b")]
    proc = subprocess.run([*cmd, *runs, "--out", str(tmp_path / "runs.png")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "runs.png").stat().st_size > 0
    missing = subprocess.run(
        [*cmd, "--plot", f"x={tmp_path}", "--out", str(tmp_path / "x.png")], cwd=ROOT, capture_output=True, text=True
    )
    assert missing.returncode == 2 and f"{tmp_path} holds no learning test's metrics.jsonl" in missing.stderr
    no_out = subprocess.run([*cmd, *runs], cwd=ROOT, capture_output=True, text=True)
    assert no_out.returncode == 2 and "--plot needs --out FILE.png" in no_out.stderr
