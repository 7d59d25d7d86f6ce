"""`tlgrpo eval`: every policy on the same held-out queries, simulated through the Ray pool.

Writes, into one folder: `results.md` (a table shaped like the paper's: rows are method x
protocol, columns are tasks, then the averages), the same numbers as `results.json`, every
episode as a line of `episodes.jsonl`, and `turn_curves.png` (average score of the k-th proposed
design, and the best score so far, per turn: the paper's Figure 4).
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from simworkers.task import Task
from system.agent.episode import Episode, Protocol, Simulate
from system.agent.policies import Policy
from system.evaluation.datasets import QuerySource


def _label(episode: Episode) -> str:
    return f"{episode.policy} ({episode.protocol})"


EpisodeKey = tuple[str, str, str, int]  # policy, protocol, task, query seed


def episode_key(episode: Episode) -> EpisodeKey:
    return (episode.policy, episode.protocol, episode.task, episode.seed)


async def run_evaluation(
    tasks: list[Task],
    policies: list[Policy],
    protocols: list[Protocol],
    n_queries: int,
    budget: int,
    simulate: Simulate,
    *,
    source: QuerySource,
    concurrency: int = 8,
    on_done: Callable[[Episode], None] | None = None,
    finished: dict[EpisodeKey, Episode] | None = None,
) -> list[Episode]:
    """All episodes, the same eval queries for every method (from `source`: the evaluation
    datasets, or built on the fly); non-LLM methods run once per query. Episodes in `finished`
    (those of a killed evaluation that ended without a failure) are taken as they are, in their
    place, and not run again."""
    finished = finished or {}
    gate = asyncio.Semaphore(concurrency)
    jobs = []
    for task in tasks:
        for policy in (p for p in policies if p.applies_to(task)):
            await policy.prepare(task, source)
        for query in await source.get(task, "eval", n_queries):
            for policy in (p for p in policies if p.applies_to(task)):
                for protocol in protocols if policy.uses_protocol else ["n/a"]:
                    jobs.append((policy, task, query, protocol))

    async def one(policy, task, query, protocol) -> Episode:
        if (done := finished.get((policy.name, protocol, task.name, query.seed))) is not None:
            return done
        async with gate:
            episode = await policy.run(task, query, protocol, budget, simulate)
        if on_done is not None:
            on_done(episode)
        return episode

    return list(await asyncio.gather(*(one(*job) for job in jobs)))


def load_finished(path: Path) -> tuple[dict[EpisodeKey, Episode], dict[EpisodeKey, dict]]:
    """The episodes of an evaluation's log that ended without a failure, and their lines as
    written; a line that a kill cut short is skipped (its episode runs again)."""
    episodes: dict[EpisodeKey, Episode] = {}
    records: dict[EpisodeKey, dict] = {}
    if not path.is_file():
        return episodes, records
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        episode = Episode.from_json(row)
        if not episode.failure:
            episodes[episode_key(episode)], records[episode_key(episode)] = episode, row
    return episodes, records


def count_jobs(tasks: list[Task], policies: list[Policy], protocols: list[Protocol], n_queries: int) -> int:
    return n_queries * sum(len(protocols) if p.uses_protocol else 1 for t in tasks for p in policies if p.applies_to(t))


def summarise(episodes: list[Episode], tasks: list[Task]) -> dict:
    """The table's numbers. An episode that an infrastructure fault ended is not scored: it is
    counted per method under `failures` (rerun with `tlgrpo eval --resume` to complete it)."""
    by_method: dict[str, list[Episode]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for episode in episodes:
        if episode.failure:
            failures[_label(episode)] += 1
        else:
            by_method[_label(episode)].append(episode)
    episodes = [e for e in episodes if not e.failure]
    domain = {t.name: t.domain for t in tasks}
    rows = []
    for method, mine in by_method.items():
        per_task, nonzero = {}, {}
        for task in tasks:
            eps = [e for e in mine if e.task == task.name]
            if eps:
                per_task[task.name] = statistics.fmean(e.best_score for e in eps)
                designs = [t for e in eps for t in e.designs]
                nonzero[task.name] = sum(t.score > 0 for t in designs) / len(designs) if designs else 0.0
        averages = {}
        for name, members in (("in-domain", "in"), ("out-of-domain", "out")):
            values = [v for t, v in per_task.items() if domain[t] == members]
            if values:
                averages[name] = statistics.fmean(values)
        evaluated = {e.task for e in episodes}
        if evaluated <= set(per_task):  # lookup runs in domain only: no average over all tasks
            averages["all"] = statistics.fmean(per_task.values())
        turn_scores, history = [], []
        budget = mine[0].budget
        for k in range(budget):
            at_k = [s for e in mine if (s := e.per_turn()[0][k]) is not None]
            turn_scores.append(statistics.fmean(at_k) if at_k else None)
            history.append(statistics.fmean(e.per_turn()[1][k] for e in mine))
        rows.append(
            {
                "method": method,
                "per_task": per_task,
                "nonzero_share": nonzero,  # of the proposed designs, those scoring above 0
                "averages": averages,
                "episodes": len(mine),
                "simulations": sum(e.simulations for e in mine),
                "format_error_rate": _format_error_rate(mine),
                "turn_score": turn_scores,
                "history_best": [statistics.fmean(e.initial_score for e in mine), *history],
            }
        )
    initial = {
        t.name: statistics.fmean(e.initial_score for e in episodes if e.task == t.name)
        for t in tasks
        if any(e.task == t.name for e in episodes)
    }
    return {
        "tasks": [t.name for t in tasks],
        "domains": domain,
        "rows": rows,
        "initial": initial,
        "queries_per_task": len({(e.task, e.seed) for e in episodes}) // max(1, len(tasks)),
        "failures": dict(failures),
    }


def _format_error_rate(episodes: list[Episode]) -> float | None:
    turns = [t for e in episodes for t in e.turns[1:] if t.reply]
    return sum(not t.format_ok for t in turns) / len(turns) if turns else None


def markdown_table(summary: dict) -> str:
    tasks = summary["tasks"]
    averages = [a for a in ("in-domain", "out-of-domain") if any(a in r["averages"] for r in summary["rows"])]
    head = ["method (protocol)", *tasks, *(f"avg {a}" for a in averages), "avg all"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    initial = summary["initial"]
    lines.append(
        "| initial design (turn 0) | "
        + " | ".join(f"{initial.get(t, 0):.3f}" for t in tasks)
        + " |"
        + " - |" * (len(averages) + 1)
    )
    for row in summary["rows"]:
        cells = [_cell(row["per_task"].get(t)) for t in tasks]
        cells += [_cell(row["averages"].get(a)) for a in averages] + [_cell(row["averages"].get("all"))]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    """A table cell: '-' where the method did not run (lookup out of domain)."""
    return "-" if value is None else f"{value:.3f}"


def plot_curves(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for row in summary["rows"]:
        turns = [k + 1 for k, v in enumerate(row["turn_score"]) if v is not None]
        ax1.plot(turns, [v for v in row["turn_score"] if v is not None], marker="o", label=row["method"])
        ax2.plot(range(len(row["history_best"])), row["history_best"], marker="o", label=row["method"])
    ax1.set(title="average score of the k-th design", xlabel="turn", ylabel="score")
    ax2.set(title="best score so far (turn 0 = initial design)", xlabel="turn", ylabel="score")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    if summary["rows"]:
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(
    out: Path, episodes: list[Episode], summary: dict, settings: dict, records: dict[EpisodeKey, dict] | None = None
) -> None:
    """The folder's files. `records` are episodes' lines as first written (a resumed evaluation's
    kept episodes carry their token counts, which `Episode.from_json` does not restore)."""
    out.mkdir(parents=True, exist_ok=True)
    records = records or {}
    partial = out / "episodes.jsonl.tmp"
    with partial.open("w") as fh:
        for episode in episodes:
            row = records.get(episode_key(episode)) or episode.to_json()
            fh.write(json.dumps(row, default=str) + "\n")
    partial.replace(out / "episodes.jsonl")
    (out / "results.json").write_text(json.dumps({"settings": settings, **summary}, indent=2))
    header = (
        f"# Evaluation\n\n{settings['queries']} held-out queries per task, budget {settings['budget']} "
        "simulations after the initial design. Each cell: mean over queries of the best score among the "
        "designs the method proposed (turn 0 excluded; its own row shows the initial design).\n\n"
    )
    (out / "results.md").write_text(header + markdown_table(summary) + "\n\n![per-turn curves](turn_curves.png)\n")
    plot_curves(summary, out / "turn_curves.png")
