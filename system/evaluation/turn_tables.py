"""What each method's turns did (simulated, refused, ended, unparsed) and how its simulated
designs moved: parameters changed, size of the change, scores around the initial design's."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from simworkers.units import QuantityError, parse_quantity
from system.evaluation.methods import in_row_order, label_of

ACTIONS = (
    ("ok", "simulated"),
    ("failed", "simulation failed or timed out"),
    ("invalid", "design refused (outside the ranges, unknown name)"),
    ("end", "`<Design End>`"),
    ("none", "no action parsed"),
)


def action_kind(turn: dict) -> str:
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
            counts[method][action_kind(turn)] += 1
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
            if action_kind(turn) not in ("ok", "failed") or not turn.get("design"):
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
