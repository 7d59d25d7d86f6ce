"""Paired differences between methods on the same held-out queries, with bootstrap intervals over
queries (a query's training seeds averaged first): what tells a tie from a win."""

from __future__ import annotations

import statistics
from collections import defaultdict

from system.evaluation.methods import BASELINES, in_row_order, label_of

INTERVAL_DRAWS = 2000  # bootstrap resamples of the queries behind an average
AGAINST = ("random", "bo", "constant")  # what every method is measured against by default


def bootstrap_interval(scores: dict[str, dict[int, list[float]]], draws: int = INTERVAL_DRAWS, seed: int = 0):
    """The 95 % interval of an average over tasks of each task's mean over queries. `scores` maps
    a task to each query's scores (one per training seed: a query's seeds are averaged and kept
    together). The queries are resampled with replacement within each task; the tasks are fixed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    means = np.zeros(draws)
    tasks = [t for t in scores if scores[t]]
    for task in tasks:
        per_query = np.array([statistics.fmean(v) for v in scores[task].values()])
        picks = rng.integers(0, len(per_query), size=(draws, len(per_query)))
        means += per_query[picks].mean(axis=1)
    means /= max(1, len(tasks))
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def episode_scores(episodes: list[dict], tasks: list[str]) -> dict[str, dict[str, dict[int, list[float]]]]:
    """label -> task -> query seed -> the best scores of that query's episodes (one per run seed)."""
    out: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: {t: defaultdict(list) for t in tasks})
    for e in episodes:
        if e.get("task") in tasks and e.get("best_score") is not None:
            out[label_of(e["policy"], e.get("protocol"))][e["task"]][e["seed"]].append(e["best_score"])
    return out


def paired_difference(
    a: dict[str, dict[int, list[float]]], b: dict[str, dict[int, list[float]]], draws: int = INTERVAL_DRAWS
) -> tuple[float, float, float, int] | None:
    """`a` minus `b` on the queries both ran (a query's seeds averaged first): the average over
    tasks of each task's mean difference, its 95 % bootstrap interval (the common queries
    resampled within each task, both methods together, so a query's difficulty cancels) and the
    number of common queries. None when they share no query."""
    paired = {}
    for task in a:
        common = sorted(set(a[task]) & set(b.get(task, {})))
        if common:
            paired[task] = {q: [statistics.fmean(a[task][q]) - statistics.fmean(b[task][q])] for q in common}
    if not paired:
        return None
    mean = statistics.fmean(statistics.fmean(v[0] for v in q.values()) for q in paired.values())
    lo, hi = bootstrap_interval(paired, draws)
    return mean, lo, hi, sum(len(q) for q in paired.values())


def difference_table(episodes: list[dict], tasks: list[str], against: tuple[str, ...] = AGAINST) -> str:
    """Every language-model row against each method of `against` on the same queries: the paired
    difference of best@budget with its 95 % interval; an interval that excludes 0 is a win or a
    loss, one that straddles it a tie at this many queries. A language-model method in `against`
    (the warm-up, TL-GRPO) is taken in the row's own protocol. Empty when no row has a pair."""
    scores = episode_scores(episodes, tasks)
    against = tuple(a for a in against if a in scores)
    if not against:
        return ""
    lines = [
        "| method | " + " | ".join(f"minus {a} (95 % interval)" for a in against) + " | common queries |",
        "|---|" + "---:|" * (len(against) + 1),
    ]
    for method in in_row_order(scores):
        if method in BASELINES:
            continue
        cells, common = [], 0
        st_iter = method.endswith(" (st-iter)")
        for a in against:
            other = f"{a} (st-iter)" if st_iter and a not in BASELINES else a
            diff = paired_difference(scores[method], scores[other]) if other != method and other in scores else None
            if diff is None:
                cells.append("-")
                continue
            mean, lo, hi, common = diff
            cells.append(f"{mean:+.3f} ({lo:+.3f} to {hi:+.3f})")
        if any(cell != "-" for cell in cells):  # a row with nothing to pair against is left out
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {common} |")
    return "\n".join(lines) if len(lines) > 2 else ""
