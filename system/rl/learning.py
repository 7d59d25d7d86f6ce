"""Learning tests (SPEC section 8), like RLlib's tuned examples: a small named training run on an
environment whose answer is known, with a threshold on a held-out metric that a correct loop
reaches within its budget and a broken one does not.

A learning test is `configs/learning/NAME.yaml`: an ordinary training config plus a `pass:`
block (the held-out metric, its threshold, and a step and a time budget). `run_learning_test`
trains with held-out evaluations every `run.eval_every` steps (and one before the first step),
stops as soon as the metric reaches the threshold, and returns the curve. Tasks that exist only
for learning tests (a one-parameter circuit) live in `configs/learning/tasks/`.

`TLGRPO_TEST_BREAK` (test-only, never a config key) breaks the loop on purpose to show that the
test catches it: `zero-advantages` or `flip-advantages` (system/rl/buffer.py).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from system.config import (
    CONFIG_DIR,
    ConfigError,
    TrainConfig,
    config_from_tree,
    explain_error,
    parse_overrides,
    read_tree,
)
from wire.config import Section

LEARNING_DIR = CONFIG_DIR / "learning"
LEARNING_TASKS = LEARNING_DIR / "tasks"
Metric = Literal["best", "turn_mean"]


class PassRule(Section):
    """When a learning test passes: `metric` on the held-out queries reaches `threshold` by
    `max_steps` training steps and `max_seconds` of wall time (whichever ends first)."""

    metric: Metric = Field(
        "best",
        description="best: the policy's mean best score over its proposed designs (best@T, the headline); "
        "turn_mean: the mean score of every proposed design",
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="null: a reported run (the curve, kept), with nothing to reach"
    )
    max_steps: int = Field(ge=1)
    max_seconds: float = Field(gt=0)
    description: str = ""


@dataclass
class LearningResult:
    name: str
    passed: bool | None  # None: a reported run, with no threshold
    metric: str
    value: float  # the last held-out value (the passing one when it passed)
    threshold: float | None
    steps: int  # training steps taken
    seconds: float
    curve: list[dict] = field(default_factory=list)  # {"step", "seconds", "value", "random"} per evaluation

    def to_json(self) -> dict:
        return asdict(self)


def learning_tests() -> dict[str, Path]:
    return {p.stem: p for p in sorted(LEARNING_DIR.glob("*.yaml"))}


@contextmanager
def learning_tasks():
    """The learning tests' own tasks findable by name (on TLGRPO_TASK_PATH) while a test loads and
    runs, and never after: they are no part of the suite (`all` does not list them)."""
    before = os.environ.get("TLGRPO_TASK_PATH")
    paths = [p for p in (before or "").split(os.pathsep) if p]
    os.environ["TLGRPO_TASK_PATH"] = os.pathsep.join([*paths, str(LEARNING_TASKS)])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TLGRPO_TASK_PATH", None)
        else:
            os.environ["TLGRPO_TASK_PATH"] = before


def load_learning_test(name: str, overrides: list[str] | None = None) -> tuple[TrainConfig, PassRule]:
    """The test's training config (overrides applied) and its pass rule."""
    tests = learning_tests()
    if name not in tests:
        raise ConfigError(f"unknown learning test {name!r}: use one of {', '.join(tests) or '(none)'}")
    path = tests[name]
    tree = read_tree(path)
    if not isinstance(tree.get("pass"), dict):
        raise ConfigError(f"{path}: a learning test needs a 'pass:' block (metric, threshold, max_steps, max_seconds)")
    raw_rule = tree.pop("pass")
    overrides = list(overrides or [])
    for key, value in parse_overrides([o for o in overrides if o.startswith("pass.")]):
        raw_rule[key.removeprefix("pass.")] = value
    overrides = [o for o in overrides if not o.startswith("pass.")]
    try:
        rule = PassRule(**raw_rule)
    except ValidationError as exc:
        raise ConfigError(f"{path}: pass: {explain_error(exc, PassRule)}") from None
    with learning_tasks():
        cfg = config_from_tree(tree, overrides)
    if cfg.run.eval_every < 1:
        raise ConfigError(f"{path}: run.eval_every must be at least 1: the test evaluates as it trains")
    return cfg, rule


def held_out_value(summary: dict, policy_prefix: str, metric: Metric) -> float:
    """The policy's value in an evaluation summary (system/evaluation/evaluate.py)."""
    row = next(r for r in summary["rows"] if r["method"].startswith(policy_prefix))
    if metric == "best":
        return float(row["averages"]["all"])
    values = [v for v in row["turn_score"] if v is not None]
    return sum(values) / len(values) if values else 0.0


def baseline_value(summary: dict, name: str, metric: Metric) -> float | None:
    rows = [r for r in summary["rows"] if r["method"].split(" ")[0] == name]
    return held_out_value(summary, name, metric) if rows else None


def run_learning_test(name: str, out_dir: str | None = None, overrides: list[str] | None = None) -> LearningResult:
    from system.rl.train import Trainer

    cfg, rule = load_learning_test(name, overrides)
    updates = {"steps": rule.max_steps, "eval_at_start": True}
    if out_dir:
        updates["out_dir"] = out_dir
    cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update=updates)})
    started = time.monotonic()
    curve: list[dict] = []

    def on_eval(step: int, summary: dict) -> bool:
        value = held_out_value(summary, cfg.algorithm.name, rule.metric)
        point = {"step": step, "seconds": round(time.monotonic() - started, 1), "value": value}
        for baseline in cfg.run.eval_baselines:
            point[baseline] = baseline_value(summary, baseline, rule.metric)
        curve.append(point)
        goal = f" (passes at {rule.threshold})" if rule.threshold is not None else ""
        print(f"learn-test {name}: step {step}, held-out {rule.metric} {value:.3f}{goal}", flush=True)
        reached = rule.threshold is not None and step > 0 and value >= rule.threshold
        return reached or time.monotonic() - started > rule.max_seconds

    with learning_tasks():
        Trainer(cfg, on_eval=on_eval, baselines_first=True).run()
    last = curve[-1] if curve else {"step": 0, "seconds": 0.0, "value": 0.0}
    passed = None
    if rule.threshold is not None:
        passed = last["step"] > 0 and last["value"] >= rule.threshold and last["seconds"] <= rule.max_seconds
    seconds = time.monotonic() - started
    return LearningResult(name, passed, rule.metric, last["value"], rule.threshold, last["step"], seconds, curve)
