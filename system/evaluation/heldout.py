"""The held-out curve of each training run: the policy's evaluations on held-out queries while it
trained (`RUN/eval/step_N/results.json`, written every `run.eval_every` steps and at step 0 with
`run.eval_at_start`), so that a comparison can say where each method's curve flattened.

A run's value at an evaluation is its `avg all`: the mean over the evaluated tasks of the mean
best score over their queries (the headline metric at the run's budget)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from system.evaluation.figures import mean_curve

POLICY = re.compile(r"^[a-z_]+@\d+\b")  # the training policy's row, e.g. "tl_grpo@10 (multi-turn)"
FLAT = 0.02  # a gain below this over the rest of the run counts as flat (about one query in 50)


def run_curve(run: Path) -> list[tuple[int, float]]:
    """(step, value) of every held-out evaluation of one run folder, in step order."""
    points = []
    for path in sorted(run.glob("eval/step_*/results.json")):
        result = json.loads(path.read_text())
        rows = [r for r in result["rows"] if POLICY.match(r["method"]) and "all" in r["averages"]]
        if not rows:
            raise ValueError(f"{path}: no row of the training policy (METHOD@STEP) with an average over its tasks")
        points.append((int(result["settings"]["step"]), rows[0]["averages"]["all"]))
    return sorted(points)


def eval_seconds(run: Path) -> list[float]:
    """The wall seconds of each held-out evaluation after step 0, where the run recorded them."""
    seconds = []
    for path in sorted(run.glob("eval/step_*/results.json")):
        settings = json.loads(path.read_text())["settings"]
        if settings.get("step", 0) > 0 and isinstance(settings.get("wall_s"), (int, float)):
            seconds.append(float(settings["wall_s"]))
    return seconds


def load_curves(root: Path, runs: dict[str, dict[int, list[dict]]]) -> dict[str, dict[int, list[tuple[int, float]]]]:
    """The held-out curves of the runs `load_runs` found, by method and seed (runs with none left out)."""
    curves: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for method, seeds in runs.items():
        for seed in seeds:
            if points := run_curve(root / f"{method}-s{seed}"):
                curves.setdefault(method, {})[seed] = points
    return curves


def flattened_at(curve: list[tuple[int, float]], flat: float = FLAT) -> int | None:
    """The first evaluated step after which the curve never rises more than `flat` above its value
    there; None while the last evaluation is itself that step (too early to tell)."""
    for k, (step, value) in enumerate(curve[:-1]):
        if max(v for _, v in curve[k + 1 :]) <= value + flat:
            return step
    return None


def curve_table(curves: dict[str, dict[int, list[tuple[int, float]]]]) -> str:
    """One row per method: the seeds' mean held-out value at each evaluated step, its best, and
    where it flattened."""
    if not curves:
        return ""
    means = {method: mean_curve(seeds) for method, seeds in curves.items()}
    steps = sorted({step for curve in means.values() for step, _ in curve})
    head = " | ".join(f"step {s}" for s in steps)
    lines = [f"| method | seeds | {head} | flat from (gain <= {FLAT}) |", "|---|---:|" + "---:|" * (len(steps) + 1)]
    for method, curve in means.items():
        values = dict(curve)
        cells = " | ".join(f"{values[s]:.3f}" if s in values else "-" for s in steps)
        at = flattened_at(curve)
        lines.append(f"| {method} | {len(curves[method])} | {cells} | {'-' if at is None else f'step {at}'} |")
    return "\n".join(lines)
