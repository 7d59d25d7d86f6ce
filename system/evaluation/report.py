"""`tlgrpo report OUT`: the comparison's tables and figures from what scripts/compare.sh wrote.

Reads each training run's `metrics.jsonl` and wall time, and the two evaluations' `results.json`
(`eval-in` and `eval-out`, each merged with every `eval-in-*` / `eval-out-*` folder beside it: BO
and random search on more queries in `-baselines`, one finished run's policy in `-tl_grpo-s0`) with
their `episodes.jsonl` (or a kept `episodes.jsonl.gz`); writes `report.md` (tables shaped like
the paper's Tables 1 and 2: best score at the evaluation budget per task, mean over seeds with the
spread across seeds; paired differences against the baselines, the warm-up and TL-GRPO; what
each method's turns did: simulated, refused, ended, unparsed; how far its designs moved and how
their scores spread around the initial design's; and each run on its own),
`training_curves.png` (reward, entropy and response length per step, the paper's Figure 3) and
`turn_curves.png` (history-best per turn on held-out queries, Figure 4).
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path

from simworkers.units import QuantityError, parse_quantity
from system.config import ALGORITHMS

METHODS = ALGORITHMS  # the RL methods, in report order
_LM = re.compile(r"^(?:hf|vllm):")  # a local language model's policy: through the HF or the vLLM engine
_RUN = re.compile(r"^(?:hf|vllm):.*?/(?P<method>[a-z_]+)-s(?P<seed>\d+)/final")
_PROTOCOL = re.compile(r" \((?P<protocol>multi-turn|st-iter|n/a)\)$")
INTERVAL_DRAWS = 2000  # bootstrap resamples of the queries behind an average


def method_of(row_name: str) -> tuple[str, int | None]:
    """('tl_grpo', 0) for an RL run's row, ('warm-up', None) for the warm-up, ('base model', None)
    for an installed model named without a folder (`vllm:smollm2-135m`), else the name."""
    name = _PROTOCOL.sub("", row_name)
    match = _RUN.match(name)
    if match:
        return match["method"], int(match["seed"])
    if _LM.match(name) and "warmup" in name:
        return "warm-up", None
    if _LM.match(name) and "/" not in name:
        return "base model", None
    return name, None


def base_method(method: str) -> str | None:
    """The RL method a run's name stands for: itself, or for a variant run named METHOD_VARIANT
    (e.g. `tl_grpo_own`, TL-GRPO trained with another setting) its METHOD; None for anything else."""
    if method in METHODS:
        return method
    return next((m for m in sorted(METHODS, key=len, reverse=True) if method.startswith(m + "_")), None)


def _rank(method: str, first: tuple[str, ...] = ()) -> tuple:
    """Where a method's rows stand: `first`, then the RL methods in report order, each variant
    right after its method, then anything else by name."""
    order = [*first, *METHODS]
    if method in order:
        return (order.index(method), 0, method)
    base = base_method(method)
    return (order.index(base), 1, method) if base else (len(order), 0, method)


def label_of(name: str, protocol: str | None = None) -> str:
    """A table row's method: the method (seeds pooled), and ' (st-iter)' for that protocol. `name`
    is a results row's name, "policy (protocol)", or an episode's policy with its protocol."""
    if protocol is None:
        protocol = m["protocol"] if (m := _PROTOCOL.search(name)) else "n/a"
    method = method_of(name)[0]
    return f"{method} (st-iter)" if protocol == "st-iter" else method


def in_row_order(methods) -> list[str]:
    """Baselines first (BO, random search, the warm-up), then the RL methods, then anything else;
    a method's ST-iter row right after its multi-turn row."""

    def key(label: str):
        method = label.removesuffix(" (st-iter)")
        return (*_rank(method, ("bo", "random", "base model", "warm-up")), label != method)

    return sorted(methods, key=key)


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


BASELINES = ("random", "bo")  # the search baselines: no protocol, no training seed


def difference_table(episodes: list[dict], tasks: list[str], against: tuple[str, ...] = BASELINES) -> str:
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


def run_table(episodes: list[dict], tasks: list[str]) -> str:
    """One row per language-model run and protocol, seeds apart (the tables above pool them): the
    average over tasks of its mean best score, and two signs of how it spends its budget: the share
    of its episodes that simulated no design, and of those it ended at its first turn."""
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in episodes:
        if e.get("task") in tasks and _LM.match(e["policy"]) and e.get("best_score") is not None:
            runs[(e["policy"], e.get("protocol") or "n/a")].append(e)
    if not runs:
        return ""
    lines = [
        "| run | protocol | avg best score | episodes that simulated no design | ended at the first turn |",
        "|---|---|---:|---:|---:|",
    ]

    def order(run: tuple[str, str]):
        method, seed = method_of(run[0])
        return (*_rank(method, ("base model", "warm-up")), seed or 0, run[1])

    for policy, protocol in sorted(runs, key=order):
        mine = runs[(policy, protocol)]
        by_task = defaultdict(list)
        for e in mine:
            by_task[e["task"]].append(e["best_score"])
        avg = statistics.fmean(statistics.fmean(v) for v in by_task.values())
        idle = sum(not any(_action_kind(t) == "ok" for t in e["turns"][1:]) for e in mine) / len(mine)
        ended = sum(len(e["turns"]) > 1 and e["turns"][1]["action"] == "end" for e in mine) / len(mine)
        method, seed = method_of(policy)
        name = method if seed is None else f"{method} s{seed}"
        lines.append(f"| {name} | {protocol} | {avg:.3f} | {idle:.2f} | {ended:.2f} |")
    return "\n".join(lines)


def _mean_spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def eval_table(results: dict, average: str, episodes: list[dict] | None = None) -> tuple[str, dict]:
    """Rows grouped by method and protocol (seeds pooled as mean ± population std across seeds).
    With the episodes, each average gets its 95 % bootstrap interval over queries
    (`bootstrap_interval`) and the number of queries per task behind it."""
    tasks = results["tasks"]
    by_method: dict[str, list[dict]] = defaultdict(list)
    for row in results["rows"]:
        by_method[label_of(row["method"])].append(row)
    scores = episode_scores(episodes, tasks) if episodes else {}
    extra = ["95 % interval", "queries"] if episodes else []
    head = ["method", *tasks, f"avg {average}", *extra, "format errors"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    lines.append(
        "| initial design (turn 0) | "
        + " | ".join(f"{results['initial'].get(t, 0):.3f}" for t in tasks)
        + " | -" * (len(extra) + 2)
        + " |"
    )
    averages = {}
    for method in in_row_order(by_method):
        rows = by_method[method]
        cells = [_mean_spread([r["per_task"][t] for r in rows]) for t in tasks]
        avg = [r["averages"][average] for r in rows]
        averages[method] = avg
        errors = [r["format_error_rate"] for r in rows if r["format_error_rate"] is not None]
        err = f"{statistics.fmean(errors):.2f}" if errors else "-"
        seeds = f" ({len(rows)} seeds)" if len(rows) > 1 else ""
        interval = []
        if episodes:
            mine = scores.get(method, {})
            counts = sorted(len(q) for q in mine.values()) or [0]
            interval = ["-", "-"]
            if counts[-1]:
                lo, hi = bootstrap_interval(mine)
                queries = str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}-{counts[-1]}"
                interval = [f"{lo:.3f}-{hi:.3f}", queries]
        cells += [_mean_spread(avg), *interval, err]
        lines.append(f"| {method}{seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines), averages


ACTIONS = (
    ("ok", "simulated"),
    ("failed", "simulation failed or timed out"),
    ("invalid", "design refused (outside the ranges, unknown name)"),
    ("end", "`<Design End>`"),
    ("none", "no action parsed"),
)


def _action_kind(turn: dict) -> str:
    if turn["action"] != "call":
        return "end" if turn["action"] == "end" else "none"
    status = (turn.get("result") or {}).get("status", "invalid")
    return "failed" if status == "timeout" else status


def action_table(episodes: list[dict]) -> str:
    """Share of each method's turns (after the initial design) by what they did, seeds pooled."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for episode in episodes:
        method = label_of(episode["policy"], episode.get("protocol"))
        for turn in episode["turns"][1:]:
            counts[method][_action_kind(turn)] += 1
            counts[method]["format errors"] += not turn.get("format_ok", True)
    head = ["method", "turns", *(title for _, title in ACTIONS), "format errors"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for method in in_row_order(counts):
        row = counts[method]
        total = sum(row[kind] for kind, _ in ACTIONS)
        shares = [f"{row[kind] / max(1, total):.2f}" for kind, _ in (*ACTIONS, ("format errors", ""))]
        lines.append(f"| {method} | {total} | " + " | ".join(shares) + " |")
    return "\n".join(lines)


def _number(value) -> float | None:
    """A design value as a float: kept episodes from before designs were recorded as numbers hold
    the reply's text ("1.42u") for the parameters a call named."""
    try:
        number = parse_quantity(value)
    except QuantityError:
        return None
    return number if number != 0 else None


def move_table(episodes: list[dict]) -> str:
    """How each method's simulated designs (refused ones excluded, failed ones scored 0) moved from
    the design before them (the last simulated one, the initial design first): parameters
    changed, the median size of a change in decades, and their scores against the query's initial
    design. Best-of-k rewards spread: designs as good as the initial one on average still give a
    high best score when they spread widely, and little when they stay near it."""
    moves: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for episode in episodes:
        method = label_of(episode["policy"], episode.get("protocol"))
        turns = episode["turns"]
        if not turns or not turns[0].get("design") or turns[0].get("score") is None:
            continue
        before, initial = turns[0]["design"], turns[0]["score"]
        for turn in turns[1:]:
            if _action_kind(turn) not in ("ok", "failed") or not turn.get("design"):
                continue  # simulated designs only (a failed simulation scores 0)
            design, row = turn["design"], moves[method]
            sizes = []
            for name, value in design.items():
                new, old = _number(value), _number(before.get(name))
                size = abs(math.log10(abs(new / old))) if new is not None and old is not None else 0.0
                if size > 1e-9:
                    sizes.append(size)
            row["changed"].append(len(sizes))
            row["sizes"] += sizes
            row["gain"].append(turn["score"] - initial)
            before = design
    head = [
        "method",
        "simulated designs",
        "parameters changed a design",
        "median change (decades)",
        "score minus the initial design's: mean",
        "sd",
        "share above it",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for method in in_row_order(moves):
        row = moves[method]
        gain = row["gain"]
        size = f"{statistics.median(row['sizes']):.2f}" if row["sizes"] else "-"
        cells = [
            str(len(gain)),
            f"{statistics.fmean(row['changed']):.1f}",
            size,
            f"{statistics.fmean(gain):+.3f}",
            f"{statistics.pstdev(gain):.3f}",
            f"{sum(g > 0 for g in gain) / len(gain):.2f}",
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if moves else ""


def _curves_by_method(results: dict) -> dict[str, list[list[float]]]:
    out: dict[str, list[list[float]]] = defaultdict(list)
    for row in results["rows"]:
        out[method_of(row["method"])[0]].append(row["history_best"])
    return out


def load_runs(root: Path) -> dict[str, dict[int, list[dict]]]:
    """Each training run's metrics by method (a variant run under its own name) and seed, in
    report order."""
    runs: dict[str, dict[int, list[dict]]] = defaultdict(dict)
    for path in sorted(root.glob("*-s*/metrics.jsonl")):
        method, _, seed = path.parent.name.rpartition("-s")
        if base_method(method) and seed.isdigit():
            runs[method][int(seed)] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {method: runs[method] for method in sorted(runs, key=_rank)}


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


def plot_training(runs: dict, path: Path) -> None:
    """Each run faint (its seed's line style), and each method's mean over its seeds in bold,
    smoothed over SMOOTHING steps: the bold lines are what to compare, the faint ones their spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("reward/mean", "mean turn reward"), ("entropy", "entropy"), ("response_length/mean", "response tokens")]
    fig, axes = plt.subplots(1, len(keys), figsize=(15, 4))
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
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def training_table(runs: dict, root: Path) -> str:
    lines = [
        "| run | steps | updates | simulations | first 4 steps: reward | last 4 steps: reward | entropy (last) "
        "| format errors (last 4) | time in steps | wall (attempts that ended) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, seeds in runs.items():
        for seed, rows in sorted(seeds.items()):
            if not rows:
                continue
            wall_file = root / f"{method}-s{seed}.time"
            # one line per attempt (a resumed run has several)
            attempts = wall_file.read_text().splitlines() if wall_file.exists() else []
            wall = f"{sum(float(a.split()[0]) for a in attempts if a.strip()):.0f} s" if attempts else "-"
            # the kept steps' own time: a killed attempt (a machine or session that ends) writes no
            # wall line, but its checkpointed steps are in the metrics
            step_s = [r["time/step_s"] for r in rows if "time/step_s" in r]
            in_steps = f"{sum(step_s):.0f} s" if step_s else "-"
            head, tail = rows[:4], rows[-4:]
            entropy = [r["entropy"] for r in rows if "entropy" in r]

            def mean(key, part):
                values = [r[key] for r in part if key in r]
                return statistics.fmean(values) if values else float("nan")

            lines.append(
                f"| {method} s{seed} | {len(rows)} | {sum('loss' in r for r in rows)} "
                f"| {sum(r.get('simulations', 0) for r in rows)} | {mean('reward/mean', head):.3f} "
                f"| {mean('reward/mean', tail):.3f} | {entropy[-1] if entropy else float('nan'):.3f} "
                f"| {mean('format_error_rate', tail):.2f} | {in_steps} | {wall} |"
            )
    return "\n".join(lines)


def trend_table(runs: dict, key: str = "reward/mean", parts: int = 3) -> str:
    """Whether a method's training curve has flattened: the mean over its seeds of `key`, averaged
    over each of `parts` equal spans of the steps that every seed reached, and the last span minus
    the one before it (near 0 when the curve is flat, the sign of its trend otherwise)."""
    lines = []
    for method, seeds in runs.items():
        _, values = seed_mean(seeds, key)
        if len(values) < parts:
            continue
        bounds = [round(k * len(values) / parts) for k in range(parts + 1)]
        spans = [values[a:b] for a, b in itertools.pairwise(bounds)]
        means = [statistics.fmean(span) for span in spans]
        cells = " | ".join(f"{m:.3f}" for m in means)
        lines.append(f"| {method} | {len(seeds)} | {cells} | {means[-1] - means[-2]:+.3f} |")
    if not lines:
        return ""
    head = " | ".join(f"part {k + 1} of {parts}" for k in range(parts))
    top = [f"| method | seeds | {head} | last minus the one before |", "|---|---:|" + "---:|" * (parts + 1)]
    return "\n".join([*top, *lines])


def load_evals(folders: list[Path]) -> tuple[dict, list[dict]] | None:
    """One evaluation's results and episodes from the folders that exist, merged: the policies
    in training runs on one query count (e.g. 30 a task) and BO and random search on another
    (e.g. 100, `eval-in-baselines`) over the same held-out queries. Rows, episodes and wall
    times add up; the first folder's tasks and initial designs stand. A folder's episodes are
    `episodes.jsonl`, or `episodes.jsonl.gz` as `keep_small_outputs` stores them."""
    merged: dict | None = None
    episodes: list[dict] = []
    for folder in folders:
        path = folder / "results.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        if merged is None:
            merged = result
        else:
            if result["tasks"] != merged["tasks"]:
                raise ValueError(f"{folder}: tasks {result['tasks']} differ from {merged['tasks']} in the first folder")
            merged["rows"] += result["rows"]
            merged["settings"] = {
                **merged["settings"],
                "wall_s": merged["settings"]["wall_s"] + result["settings"]["wall_s"],
                "more_queries": [*merged["settings"].get("more_queries", []), result["settings"]["queries"]],
            }
        if (folder / "episodes.jsonl").exists():
            text = (folder / "episodes.jsonl").read_text()
        elif (folder / "episodes.jsonl.gz").exists():
            text = gzip.decompress((folder / "episodes.jsonl.gz").read_bytes()).decode()
        else:
            continue
        episodes += [json.loads(line) for line in text.splitlines() if line.strip()]
    return None if merged is None else (merged, episodes)


def write_report(root: Path) -> Path:
    runs = load_runs(root)
    evals = {}
    parts = ["# Comparison report", ""]
    for name, title in (("eval-in", "in-domain"), ("eval-out", "out-of-domain")):
        loaded = load_evals([root / name, *sorted(root.glob(f"{name}-*"))])
        if loaded is None:
            continue
        result, lines = loaded
        evals[title] = result
        s = result["settings"]
        table, _ = eval_table(result, title, lines or None)
        queries = "-".join(str(q) for q in sorted({s["queries"], *s.get("more_queries", [])}))
        parts += [
            f"## {title} ({queries} held-out queries per task, budget {s['budget']}, {s['wall_s']:.0f} s)",
            "",
            table,
            "",
        ]
        if lines and len({e["policy"] for e in lines}) > 2:
            parts += [f"Paired differences ({title}), on the queries both methods ran:", ""]
            parts += [difference_table(lines, result["tasks"]), ""]
            between = difference_table(lines, result["tasks"], against=("base model", "warm-up", "tl_grpo"))
            if between:
                head = f"Paired differences between the language-model policies ({title}), each in its own protocol:"
                parts += [head, "", between, ""]
        if lines:
            parts += [f"What the turns did ({title}), as shares of all turns after the initial design:", ""]
            parts += [action_table(lines), ""]
            if moved := move_table(lines):
                head = f"How the simulated designs moved ({title}), each from the design before it (turn 0 first):"
                parts += [head, "", moved, ""]
            if runs_apart := run_table(lines, result["tasks"]):
                parts += [f"Each run on its own ({title}):", "", runs_apart, ""]
    if runs:
        plot_training(runs, root / "training_curves.png")
        parts += ["## Training", "", training_table(runs, root), "", "![training curves](training_curves.png)", ""]
        if trend := trend_table(runs):
            parts += ["Mean turn reward over each third of the run, seeds averaged (flat when the last two agree):", ""]
            parts += [trend, ""]
    if evals:
        plot_turns(evals, root / "turn_curves.png")
        parts += ["![per-turn curves](turn_curves.png)", ""]
    out = root / "report.md"
    out.write_text("\n".join(parts))
    return out
