"""`tlgrpo report OUT`: the comparison's tables and figures from what scripts/compare.sh wrote.

Reads each training run's `metrics.jsonl` and wall time, and the two evaluations' `results.json`
(`eval-in` and `eval-out`, each merged with every `eval-in-*` / `eval-out-*` folder beside it: BO
and random search on more queries in `-baselines`, one finished run's policy in `-tl_grpo-s0`) with
their `episodes.jsonl` (or a kept `episodes.jsonl.gz`); writes `report.md` (tables shaped like
the paper's Tables 1 and 2: best score at the evaluation budget per task, mean over seeds with the
spread across seeds; paired differences against the baselines, the warm-up, TL-GRPO and
trajectory-level GRPO; what each method's turns did: simulated, refused, ended, unparsed; how
far its designs moved and how their scores spread around the initial design's; and each run on
its own),
`training_curves.png` (reward, entropy and response length per step, the paper's Figure 3) and
`turn_curves.png` (history-best per turn on held-out queries, Figure 4).
"""

from __future__ import annotations

import gzip
import itertools
import json
import statistics
from collections import defaultdict
from pathlib import Path

from system.evaluation.figures import plot_training, plot_turns, seed_mean
from system.evaluation.heldout import curve_table, load_curves
from system.evaluation.methods import LM_POLICY, base_method, in_row_order, label_of, method_of, rank
from system.evaluation.paired import bootstrap_interval, difference_table, episode_scores
from system.evaluation.turn_tables import action_kind, action_table, move_table

# the policies every other language-model row is paired with: where each started, and the
# turn-level and trajectory-level credit assignments
BETWEEN = ("base model", "warm-up", "tl_grpo", "traj_grpo")


def run_table(episodes: list[dict], tasks: list[str]) -> str:
    """One row per language-model run and protocol, seeds apart (the tables above pool them): the
    average over tasks of its mean best score, and two signs of how it spends its budget: the share
    of its episodes that simulated no design, and of those it ended at its first turn."""
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in episodes:
        if e.get("task") in tasks and LM_POLICY.match(e["policy"]) and e.get("best_score") is not None:
            runs[(e["policy"], e.get("protocol") or "n/a")].append(e)
    if not runs:
        return ""
    lines = [
        "| run | protocol | avg best score | episodes that simulated no design | ended at the first turn |",
        "|---|---|---:|---:|---:|",
    ]

    def order(run: tuple[str, str]):
        method, seed = method_of(run[0])
        return (*rank(method, ("base model", "warm-up")), seed or 0, run[1])

    for policy, protocol in sorted(runs, key=order):
        mine = runs[(policy, protocol)]
        by_task = defaultdict(list)
        for e in mine:
            by_task[e["task"]].append(e["best_score"])
        avg = statistics.fmean(statistics.fmean(v) for v in by_task.values())
        idle = sum(not any(action_kind(t) == "ok" for t in e["turns"][1:]) for e in mine) / len(mine)
        ended = sum(len(e["turns"]) > 1 and e["turns"][1]["action"] == "end" for e in mine) / len(mine)
        method, seed = method_of(policy)
        name = method if seed is None else f"{method} s{seed}"
        lines.append(f"| {name} | {protocol} | {avg:.3f} | {idle:.2f} | {ended:.2f} |")
    return "\n".join(lines)


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def _shared_initial(episodes: list[dict], scores: dict, tasks: list[str]) -> dict[str, float]:
    """Each task's initial-design score over the queries that every row of `scores`
    (`episode_scores`) ran: rows may hold different numbers of queries (the baselines 100, the
    policies 30)."""
    initial = {(e["task"], e["seed"]): e["initial_score"] for e in episodes if e.get("initial_score") is not None}
    out = {}
    for task in tasks:
        ran = [set(by_task[task]) for by_task in scores.values() if by_task[task]]
        common = [initial[task, q] for q in set.intersection(*ran) if (task, q) in initial] if ran else []
        if common:
            out[task] = statistics.fmean(common)
    return out


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
    initial = _shared_initial(episodes, scores, tasks) if episodes else {}
    lines.append(
        "| initial design (turn 0) | "
        + " | ".join(f"{initial.get(t, results['initial'].get(t, 0)):.3f}" for t in tasks)
        + " | -" * (len(extra) + 2)
        + " |"
    )
    averages = {}
    for method in in_row_order(by_method):
        rows = by_method[method]
        cells = [_mean_spread([r["per_task"][t] for r in rows if t in r["per_task"]]) for t in tasks]
        avg = [r["averages"][average] for r in rows if average in r["averages"]]  # lookup: in domain only
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


def load_runs(root: Path) -> dict[str, dict[int, list[dict]]]:
    """Each training run's metrics by method (a variant run under its own name) and seed, in
    report order."""
    runs: dict[str, dict[int, list[dict]]] = defaultdict(dict)
    for path in sorted(root.glob("*-s*/metrics.jsonl")):
        method, _, seed = path.parent.name.rpartition("-s")
        if base_method(method) and seed.isdigit():
            runs[method][int(seed)] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {method: runs[method] for method in sorted(runs, key=rank)}


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
            between = difference_table(lines, result["tasks"], against=BETWEEN)
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
        heldout = load_curves(root, runs)
        plot_training(runs, root / "training_curves.png", heldout)
        parts += ["## Training", "", training_table(runs, root), "", "![training curves](training_curves.png)", ""]
        if heldout:
            parts += ["Held-out best score as the runs trained (evaluated every few steps), seeds averaged:", ""]
            parts += [curve_table(heldout), ""]
        if trend := trend_table(runs):
            parts += ["Mean turn reward over each third of the run, seeds averaged (flat when the last two agree):", ""]
            parts += [trend, ""]
    if evals:
        plot_turns(evals, root / "turn_curves.png")
        parts += ["![per-turn curves](turn_curves.png)", ""]
    out = root / "report.md"
    out.write_text("\n".join(parts))
    return out
