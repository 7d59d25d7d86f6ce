"""Settings studies on a learning test (`tlgrpo learn-test NAME --vary KEY=V1,V2 ...`): the test as
shipped, then each listed value of each key with everything else as shipped, one setting at a
time. Every run is a learning test in a process of its own, in a folder of its own under the
study's folder; a run whose `learning_test.json` is there already is read, not run again, so a
study that was stopped goes on where it stopped.

What is compared is training, not start-up: the runs whose warm-up would be the same as the
first run's (no `warmup.*`, `model.*`, `tasks.train`, `algorithm.budget` or `run.seed` changed)
start from its warm-up (`warmup.start_from`), and the time budget is lifted (`pass.max_seconds`)
so that every run gets the test's step budget. A run's seconds are counted from its first held-out
evaluation (before any update) to the one that passed, or to its last.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from system.config import ConfigError
from system.evaluation.heldout import eval_seconds

# a change to one of these changes what the warm-up trains on, or how
WARMUP_INPUTS = ("warmup.", "model.", "tasks.train", "algorithm.budget", "run.seed")
AS_SHIPPED = "as shipped"
CURVE_KEYS = ("step", "seconds", "value")


class StudyError(RuntimeError):
    """A run of the study ended without a result (its log says why)."""


@dataclass
class StudyRow:
    label: str
    seed: int | None  # the run.seed it set (None: the test's own)
    passed: bool | None
    steps_to_pass: int | None  # the first evaluation at or above the threshold (None: never)
    seconds_to_pass: float | None  # from the first evaluation to that one
    last_value: float
    steps: int
    seconds: float  # from the first evaluation to the last
    rollout_s: float  # a step's mean seconds, by part
    learn_s: float
    sync_s: float
    step_s: float
    eval_s: float  # a held-out evaluation's mean seconds (a run that did not record them: the wall time
    # that the steps leave, checkpoint saves included)
    format_errors_first: float | None  # training turns that broke the format, first step / last
    format_errors_last: float | None
    entropy_first: float | None  # the update's mean token entropy, first step / last
    entropy_last: float | None
    curve: list[dict]
    baselines: dict  # the baselines' held-out values on the same queries

    def to_json(self) -> dict:
        return asdict(self)


def parse_axes(specs: list[str]) -> dict[str, list[str]]:
    """`KEY=V1,V2` strings into {KEY: [V1, V2]}; a malformed one is refused by name."""
    axes: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        listed = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not listed:
            raise ConfigError(f"--vary {spec!r}: write KEY=V1,V2 (a config key, then the values to try)")
        axes.setdefault(key.strip(), []).extend(listed)
    return axes


def variants(axes: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    out = [(AS_SHIPPED, [])]
    for key, values in axes.items():
        out += [(f"{key}={value}", [f"{key}={value}"]) for value in values]
    return out


def folder_name(label: str) -> str:
    return "as-shipped" if label == AS_SHIPPED else re.sub(r"[^A-Za-z0-9.=_-]+", "_", label)


def plan_study(
    name: str, out: Path, axes: dict[str, list[str]], overrides: list[str], seeds: int = 1
) -> list[tuple[str, Path, list]]:
    """Each run of the study: (label, folder, the test's overrides). Every variant's config is
    checked before the first run starts. With `seeds` > 1 each variant runs again with run.seed
    1, 2, ...: the same warm-up as its first run (the seed varies the training, not the start)."""
    from system.rl.learning import load_learning_test

    plan = []
    shared_warmup = None
    for label, extra in variants(axes):
        folder = out / folder_name(label)
        settings = [*overrides, *extra, "pass.max_seconds=1e9"]
        cfg, _ = load_learning_test(name, settings)
        own_warmup = any(o.partition("=")[0].startswith(WARMUP_INPUTS) for o in extra)
        if shared_warmup and cfg.warmup.episodes and not cfg.warmup.start_from and not own_warmup:
            settings.append(f"warmup.start_from={shared_warmup}")
        if label == AS_SHIPPED and cfg.warmup.episodes and not cfg.warmup.start_from:
            shared_warmup = str(folder / "warmup" / "final")
        plan.append((label, folder, settings))
        warmup = next((o for o in settings if o.startswith("warmup.start_from=")), None)
        if warmup is None and cfg.warmup.episodes:
            warmup = f"warmup.start_from={folder / 'warmup' / 'final'}"
        for k in range(1, seeds):
            again = [*settings, f"run.seed={cfg.run.seed + k}"]
            if warmup and warmup not in again:
                again.append(warmup)
            load_learning_test(name, again)
            plan.append((label, folder.with_name(f"{folder.name}-seed{cfg.run.seed + k}"), again))
    return plan


def run_study(name: str, out: Path, axes: dict[str, list[str]], overrides: list[str], seeds: int = 1) -> list[StudyRow]:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, folder, settings in plan_study(name, out, axes, overrides, seeds):
        if not (folder / "learning_test.json").exists():
            print(f"study {name}: {label}: running in {folder}", flush=True)
            command = [sys.executable, "-m", "system.cli", "learn-test", name, *settings, "--out", str(folder)]
            with open(folder.parent / f"{folder.name}.log", "w") as log:
                subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), check=False)
            if not (folder / "learning_test.json").exists():
                raise StudyError(f"study {name}: {label} ended without a result: see {folder}.log")
        rows.append(study_row(label, folder, seed_of(settings)))
        print(format_row(rows[-1]), flush=True)
    (out / "study.json").write_text(json.dumps([r.to_json() for r in rows], indent=2))
    (out / "study.md").write_text(markdown(name, rows))
    plot_study(name, rows, out / "study_curves.png")
    return rows


def seed_of(settings: list[str]) -> int | None:
    """The run.seed a run's overrides set (None: the test's own)."""
    return next((int(o.partition("=")[2]) for o in reversed(settings) if o.startswith("run.seed=")), None)


def study_row(label: str, folder: Path, seed: int | None = None) -> StudyRow:
    result = json.loads((folder / "learning_test.json").read_text())
    curve = result["curve"]
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    start = curve[0]["seconds"] if curve else 0.0
    threshold = result["threshold"]
    hit = next((p for p in curve if threshold is not None and p["step"] > 0 and p["value"] >= threshold), None)

    def mean(key: str) -> float:
        values = [m[key] for m in metrics if key in m]
        return sum(values) / len(values) if values else 0.0

    seconds = (curve[-1]["seconds"] - start) if curve else 0.0
    evaluations = max(1, len(curve) - 1)
    rest = seconds - sum(m.get("time/step_s", 0.0) for m in metrics)
    walls = eval_seconds(folder)  # each held-out evaluation's own, where the run recorded them
    errors = [m["format_error_rate"] for m in metrics if "format_error_rate" in m]
    entropy = [m["entropy"] for m in metrics if "entropy" in m]
    return StudyRow(
        label=label,
        seed=seed,
        passed=result["passed"],
        steps_to_pass=hit["step"] if hit else None,
        seconds_to_pass=round(hit["seconds"] - start, 1) if hit else None,
        last_value=result["value"],
        steps=result["steps"],
        seconds=round(seconds, 1),
        rollout_s=mean("time/rollout_s"),
        learn_s=mean("time/learn_s"),
        sync_s=mean("time/weight_sync_s"),
        step_s=mean("time/step_s"),
        eval_s=sum(walls) / len(walls) if walls else max(0.0, rest) / evaluations,
        format_errors_first=errors[0] if errors else None,
        format_errors_last=errors[-1] if errors else None,
        entropy_first=entropy[0] if entropy else None,
        entropy_last=entropy[-1] if entropy else None,
        curve=[{"step": p["step"], "seconds": round(p["seconds"] - start, 1), "value": p["value"]} for p in curve],
        baselines={k: v for k, v in (curve[0] if curve else {}).items() if k not in CURVE_KEYS and v is not None},
    )


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_row(r: StudyRow) -> str:
    verdict = {True: "passed", False: "failed", None: "reported"}[r.passed]
    return (
        f"{r.label:32s} {verdict:8s} steps to pass {_num(r.steps_to_pass, 'd'):>3s}, "
        f"{_num(r.seconds_to_pass, '.0f'):>4s} s; last {r.last_value:.3f} at step {r.steps}; "
        f"step {r.step_s:.1f} s (rollout {r.rollout_s:.1f}, learn {r.learn_s:.1f}, sync {r.sync_s:.2f}), "
        f"evaluation {r.eval_s:.1f} s"
    )


def summary(rows: list[StudyRow]) -> list[dict]:
    """Per setting, over its seeds: how many runs passed, their steps and seconds to pass (the
    median over all runs, the upper of the middle two for an even count, a run that never passed
    counting as never: a setting is no faster than its slower half), a step's mean seconds."""
    out = []
    for label in dict.fromkeys(r.label for r in rows):
        runs = [r for r in rows if r.label == label]
        never = float("inf")
        steps = sorted(r.steps_to_pass if r.steps_to_pass is not None else never for r in runs)
        seconds = sorted(r.seconds_to_pass if r.seconds_to_pass is not None else never for r in runs)
        out.append(
            {
                "label": label,
                "runs": len(runs),
                "passed": sum(r.steps_to_pass is not None for r in runs),
                "steps_to_pass": [r.steps_to_pass for r in runs],
                "median_steps": statistics.median_high(steps),
                "median_seconds": statistics.median_high(seconds),
                "step_s": statistics.fmean(r.step_s for r in runs),
                "last_values": [r.last_value for r in runs],
            }
        )
    return out


def _median(value: float) -> str:
    return "never" if value == float("inf") else f"{value:.0f}"


def markdown(name: str, rows: list[StudyRow]) -> str:
    lines = [
        f"# Settings study on learning test `{name}`",
        "",
        "One setting changed at a time from the test as shipped. Seconds count from the first held-out "
        "evaluation (before any update), so they are training and its evaluations, not start-up. The "
        "medians take the upper of the middle two for an even number of runs, and a run that never "
        "passed counts as never.",
        "",
        "| setting | runs passed | steps to pass, each run | median steps to pass | median seconds to pass | "
        "step s | last value, each run |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for s in summary(rows):
        steps = ", ".join(_num(v, "d") for v in s["steps_to_pass"])
        lines.append(
            f"| {s['label']} | {s['passed']} of {s['runs']} | {steps} | {_median(s['median_steps'])} | "
            f"{_median(s['median_seconds'])} | {s['step_s']:.1f} | "
            + ", ".join(f"{v:.2f}" for v in s["last_values"])
            + " |"
        )
    lines += [
        "",
        "Each run: a step's seconds split into its rollout (generation and simulation; it overlaps the "
        "previous step's evaluation), its update and its weight sync; an evaluation's seconds are what "
        "the steps did not spend, per evaluation.",
        "",
        "| setting | seed | result | steps to pass | seconds to pass | last value (step) | step s | rollout s | "
        "learn s | sync s | evaluation s | format errors, first / last step | entropy, first / last |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        verdict = {True: "passed", False: "failed", None: "reported"}[r.passed]
        lines.append(
            f"| {r.label} | {_num(r.seed, 'd')} | {verdict} | {_num(r.steps_to_pass, 'd')} | "
            f"{_num(r.seconds_to_pass, '.0f')} | {r.last_value:.3f} ({r.steps}) | {r.step_s:.1f} | {r.rollout_s:.1f} | "
            f"{r.learn_s:.1f} | {r.sync_s:.2f} | {r.eval_s:.1f} | {_num(r.format_errors_first, '.2f')} / "
            f"{_num(r.format_errors_last, '.2f')} | {_num(r.entropy_first, '.2f')} / {_num(r.entropy_last, '.2f')} |"
        )
    curves = ["| setting | seed | held-out value by step |", "|---|---|---|"]
    for r in rows:
        values = ", ".join(f"{p['step']}: {p['value']:.2f}" for p in r.curve)
        curves.append(f"| {r.label} | {_num(r.seed, 'd')} | {values} |")
    return "\n".join([*lines, "", *curves, ""])


def plot_study(name: str, rows: list[StudyRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    colours = plt.get_cmap("tab20").colors
    labels = list(dict.fromkeys(r.label for r in rows))
    for r in rows:
        i = labels.index(r.label)
        style = {"color": "black", "linewidth": 2.2} if r.label == AS_SHIPPED else {"color": colours[i % 20]}
        first = r is next(x for x in rows if x.label == r.label)  # one legend entry a setting
        for ax, x in zip(axes, ("step", "seconds")):
            ax.plot(
                [p[x] for p in r.curve],
                [p["value"] for p in r.curve],
                marker=".",
                label=r.label if first else None,
                **style,
            )
    for key, value in (rows[0].baselines if rows else {}).items():
        for ax in axes:
            ax.axhline(value, linestyle="--", color="grey", linewidth=1)
            ax.annotate(f"{key} {value:.2f}", (0, value), fontsize=7, color="grey")
    for ax, x in zip(axes, ("step", "seconds from the first evaluation")):
        ax.set(xlabel=x, ylabel="held-out value", ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"settings study on learning test {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_runs(runs: dict[str, Path], path: Path, title: str = "") -> None:
    """Learning-test runs side by side, from their folders: by step, the training rollouts' share
    of turns that broke the format, their mean score, the mean reply length, and the held-out
    value at each evaluation (learning_test.json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("format_error_rate", "training turns that broke the format"),
        ("score/mean", "training turns' mean score"),
        ("response_length/mean", "reply tokens"),
        (None, "held-out value"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(17, 3.8))
    for i, (label, folder) in enumerate(runs.items()):
        colour = f"C{i % 10}"
        lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
        for ax, (key, _) in zip(axes, panels):
            if key is None:
                result = json.loads((folder / "learning_test.json").read_text())
                curve = result["curve"]
                ax.plot([p["step"] for p in curve], [p["value"] for p in curve], marker="o", color=colour, label=label)
            else:
                points = [(m["step"], m[key]) for m in lines if key in m]
                ax.plot([p[0] for p in points], [p[1] for p in points], color=colour, label=label)
    for ax, (key, name) in zip(axes, panels):
        ax.set(title=name, xlabel="step")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        if key != "response_length/mean":
            ax.set_ylim(0, 1)
    axes[-1].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
