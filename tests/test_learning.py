"""Learning tests (SPEC section 8): the shipped ones load with their pass rules, a malformed one is
refused with what to fix, and the smallest (`smoke`) passes: a real training on real Ray and real
ngspice that must reach its held-out threshold within its budget."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from system.config import ConfigError
from system.rl.buffer import advantage_scale
from system.rl.learning import (
    LEARNING_DIR,
    held_out_value,
    learning_tests,
    load_learning_test,
)


def test_every_shipped_learning_test_loads_with_a_pass_rule_it_can_fail():
    tests = learning_tests()
    assert {"smoke", "near-reference", "front"} <= set(tests)
    for name in tests:
        cfg, rule = load_learning_test(name)
        assert (rule.threshold is None) == (name == "front")  # front is reported, with no threshold to reach
        assert cfg.run.eval_every >= 1 and rule.max_steps >= 1 and rule.max_seconds > 0
        assert set(cfg.tasks.train) <= set(cfg.tasks.eval)


def test_a_learning_test_without_a_pass_block_or_with_a_bad_one_is_refused(tmp_path, monkeypatch):
    import system.rl.learning as learning

    monkeypatch.setattr(learning, "LEARNING_DIR", tmp_path)
    body = (LEARNING_DIR / "smoke.yaml").read_text()
    (tmp_path / "nopass.yaml").write_text(body.split("pass:")[0] + body.split("description:")[1].split("\n", 1)[1])
    with pytest.raises(ConfigError, match="needs a 'pass:' block"):
        load_learning_test("nopass")
    (tmp_path / "bad.yaml").write_text(body.replace("threshold: 0.75", "threshold: 1.5"))
    with pytest.raises(ConfigError, match=r"bad.yaml: pass:.*threshold"):
        load_learning_test("bad")
    with pytest.raises(ConfigError, match="unknown learning test 'nope'"):
        load_learning_test("nope")


def test_the_break_switch_is_read_from_the_environment_only(monkeypatch):
    monkeypatch.delenv("TLGRPO_TEST_BREAK", raising=False)
    assert advantage_scale() == 1.0
    monkeypatch.setenv("TLGRPO_TEST_BREAK", "zero-advantages")
    assert advantage_scale() == 0.0
    monkeypatch.setenv("TLGRPO_TEST_BREAK", "flip-advantages")
    assert advantage_scale() == -1.0
    monkeypatch.setenv("TLGRPO_TEST_BREAK", "typo")
    with pytest.raises(ValueError, match="TLGRPO_TEST_BREAK='typo'"):
        advantage_scale()


def test_the_held_out_value_is_read_from_an_evaluation_summary():
    summary = {
        "rows": [
            {"method": "tl_grpo@4 (multi-turn)", "averages": {"all": 0.6}, "turn_score": [0.2, 0.4]},
            {"method": "random (n/a)", "averages": {"all": 0.3}, "turn_score": [0.1, None]},
        ]
    }
    assert held_out_value(summary, "tl_grpo", "best") == 0.6
    assert held_out_value(summary, "tl_grpo", "turn_mean") == pytest.approx(0.3)
    assert held_out_value(summary, "random", "turn_mean") == pytest.approx(0.1)


@pytest.mark.slow
def test_the_smoke_learning_test_passes(tmp_path):
    """About four minutes on two cores (the warm-up 100-130 s of it), then TL-GRPO until the
    held-out best@2 reaches the threshold: two runs of the test and two demo runs of the same
    settings here all crossed it by step 12. With advantages zeroed or flipped it does not (docs/learning.md).
    In a process of its own, as a user runs it: the session's small Ray cluster cannot hold a
    training run's actors."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TLGRPO_TEST_BREAK")}
    env.update(TLGRPO_DATA_DIR=str(tmp_path / "data"), WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0")
    cmd = [str(Path(sys.executable).parent / "tlgrpo"), "learn-test", "smoke", "--json", "--out", str(tmp_path / "run")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout
    assert "{\n" in out, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out[out.index("{\n") :])
    assert done.returncode == 0 and result["passed"], result
    assert result["value"] >= result["threshold"] > result["curve"][0]["value"]  # the start could not pass
    assert result["curve"][0]["step"] == 0 and result["steps"] <= 40
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 0
