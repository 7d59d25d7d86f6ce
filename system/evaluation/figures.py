"""The report's figures: training curves per step (the paper's Figure 3) and history-best per
turn on held-out queries (Figure 4)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from system.evaluation.methods import METHODS, base_method, method_of


def _curves_by_method(results: dict) -> dict[str, list[list[float]]]:
    out: dict[str, list[list[float]]] = defaultdict(list)
    for row in results["rows"]:
        out[method_of(row["method"])[0]].append(row["history_best"])
    return out


def _series(lines: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(x["step"], x[key]) for x in lines if x.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


SEED_STYLES = ("-", "--", ":", "-.")  # a run's line by its seed, so that three seeds stay apart
SMOOTHING = 4  # steps in the trailing mean of a method's curve: 4 queries a step are noisy


def trailing_mean(values: list[float], width: int = SMOOTHING) -> list[float]:
    """Each point's mean with the `width - 1` before it (fewer at the start)."""
    return [statistics.fmean(values[max(0, k - width + 1) : k + 1]) for k in range(len(values))]


def seed_mean(seeds: dict[int, list[dict]], key: str) -> tuple[list[int], list[float]]:
    """A method's curve: at each step that every seed reached, the mean of the seeds' values."""
    series = [dict(zip(*_series(lines, key))) for lines in seeds.values()]
    steps = sorted(set.intersection(*(set(s) for s in series))) if series else []
    return steps, [statistics.fmean(s[step] for s in series) for step in steps]


def mean_curve(seeds: dict[int, list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """At each evaluated step that every seed reached, the mean of the seeds' values (`seed_mean`, on
    these points)."""
    lines = {seed: [{"step": step, "value": value} for step, value in points] for seed, points in seeds.items()}
    return list(zip(*seed_mean(lines, "value")))


def plot_training(runs: dict, path: Path, heldout: dict | None = None) -> None:
    """Each run faint (its seed's line style), and each method's mean over its seeds in bold,
    smoothed over SMOOTHING steps: the bold lines are what to compare, the faint ones their spread.
    With `heldout` (`heldout.load_curves`), a last panel: the held-out evaluations as the runs
    trained, unsmoothed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("reward/mean", "mean turn reward"), ("entropy", "entropy"), ("response_length/mean", "response tokens")]
    fig, axes = plt.subplots(1, len(keys) + bool(heldout), figsize=(5 * (len(keys) + bool(heldout)), 4))
    for method, seeds in runs.items():
        # a method's colour; its variants in the same colour with markers
        color = f"C{METHODS.index(base_method(method))}"
        marker = None if method in METHODS else "x"
        for ax, (key, _) in zip(axes, keys):
            for seed, lines in sorted(seeds.items()):
                steps, values = _series(lines, key)
                style = SEED_STYLES[seed % len(SEED_STYLES)]
                ax.plot(steps, values, color=color, linestyle=style, alpha=0.25, linewidth=0.8)
            steps, values = seed_mean(seeds, key)
            label = f"{method} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
            ax.plot(steps, trailing_mean(values), color=color, marker=marker, markersize=4, linewidth=2, label=label)
    for ax, (_, title) in zip(axes, keys):
        ax.set(title=f"{title} ({SMOOTHING}-step mean over seeds; faint: each run)", xlabel="step")
        ax.title.set_fontsize(9)
    if heldout:
        _plot_heldout(axes[-1], heldout)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_heldout(ax, heldout: dict) -> None:
    for method, seeds in heldout.items():
        color = f"C{METHODS.index(base_method(method))}"
        for seed, points in sorted(seeds.items()):
            style = SEED_STYLES[seed % len(SEED_STYLES)]
            ax.plot(*zip(*points), color=color, linestyle=style, alpha=0.25, linewidth=0.8)
        ax.plot(*zip(*mean_curve(seeds)), color=color, marker="o", markersize=3, linewidth=2, label=method)
    ax.set(title="held-out best score (mean over seeds; faint: each run)", xlabel="step")
    ax.title.set_fontsize(9)


def plot_turns(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (title, result) in zip(axes[0], results.items()):
        for method, curves in _curves_by_method(result).items():
            mean = [statistics.fmean(c[k] for c in curves) for k in range(len(curves[0]))]
            ax.plot(range(len(mean)), mean, marker="o", label=method)
        ax.set(title=f"{title}: best score so far", xlabel="simulations after the initial design", ylabel="score")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
