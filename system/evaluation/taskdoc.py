"""docs/tasks.md, written by `tlgrpo tasks doc` from fresh simulations, never by hand."""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import date
from pathlib import Path

BASELINE_COLUMNS = ("random", "bo", "centre", "reference", "constant", "lookup")


def merge_results(paths: list[Path]) -> dict:
    """Several evaluations' results.json (docs/baselines/eval-in and eval-out) as one: every
    task, each method's per-task numbers gathered from the files that have them, the first
    file's settings with the fewest queries a task that any of them evaluated."""
    merged: dict = {"tasks": [], "domains": {}, "rows": [], "settings": {}}
    by_method: dict[str, dict] = {}
    for path in paths:
        result = json.loads(path.read_text())
        merged["settings"] = merged["settings"] or dict(result["settings"])
        merged["settings"]["queries"] = min(merged["settings"]["queries"], result["settings"]["queries"])
        merged["tasks"] += [t for t in result["tasks"] if t not in merged["tasks"]]
        merged["domains"].update(result.get("domains", {}))
        for row in result["rows"]:
            mine = by_method.setdefault(row["method"], {"method": row["method"], "per_task": {}, "nonzero_share": {}})
            mine["per_task"].update(row["per_task"])
            mine["nonzero_share"].update(row.get("nonzero_share", {}))
            mine.setdefault("averages", {}).update(
                {k: v for k, v in row.get("averages", {}).items() if k in ("in-domain", "out-of-domain")}
            )
    merged["rows"] = list(by_method.values())
    return merged


def baseline_columns(results: dict) -> dict[str, dict]:
    """Per task, from the committed baseline evaluation (results.json): each baseline's mean
    best@5 and the share of random search's designs that score above 0."""
    rows = {r["method"].split(" ")[0]: r for r in results.get("rows", [])}
    out: dict[str, dict] = {}
    for task in results.get("tasks", []):
        out[task] = {name: rows.get(name, {}).get("per_task", {}).get(task) for name in BASELINE_COLUMNS}
        out[task]["random_share"] = rows.get("random", {}).get("nonzero_share", {}).get(task)
    return out


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def queries_text(paths: list[Path]) -> str:
    """How many evaluation queries a task the baseline evaluations ran, per domain they cover."""
    parts = []
    for path in paths:
        result = json.loads(path.read_text())
        names = {"in": "in-domain", "out": "out-of-domain"}
        domains = sorted({names.get(d, d) for d in result.get("domains", {}).values()}) or ["every"]
        parts.append(f"{result['settings']['queries']} evaluation queries per {' and '.join(domains)} task")
    return ", ".join(parts) or "no baseline evaluation found"


def render(rows: list[dict], n_random: int, baselines: dict | None = None, baseline_queries: str = "") -> str:
    baselines = baselines or {}
    lines = [
        "# Circuit tasks",
        "",
        f"Written by `tlgrpo tasks doc` on {date.today().isoformat()} ({platform.machine()}, "
        f"{os.cpu_count()} cores). ms/sim: one warm simulation of the reference design on one core "
        "(shared-library backend); random ms/sim: the median and the slowest of the random designs below, "
        "one per core. Reference: its score against the nominal specs (must be 1.0). Front: the members "
        "of the task's trade-off front and the cells its witnesses are spread over (SPEC section 2; "
        "`tlgrpo data build` builds it). "
        f"Random median and random > 0: {n_random} random designs, five per evaluation query, each scored "
        "against its query's targets (the targets a front member is known to meet). "
        "The best@5 columns and random@5 > 0: from the committed baseline evaluation (`docs/baselines/`, "
        f"{baseline_queries or 'no baseline evaluation found'}, budget 5): random search, BO, and the "
        "shortcuts `centre`, `reference`, `constant` and (in domain) `lookup`. The bounds "
        "(`tlgrpo tasks calibrate` checks them): on every task centre, reference and constant below "
        "random search; in domain at least 20 % of random designs above 0, random and BO between 0.10 "
        "and 0.90 per task and averaging 0.35-0.65, constant averaging at most 0.35; out of domain BO "
        "averaging 0.05-0.35.",
        "",
    ]
    for domain in ("in-domain", "out-of-domain"):
        mine = [r for r in rows if r["domain"] == domain]
        if not mine:
            continue
        lines += [
            f"## {domain.capitalize()} ({len(mine)} tasks)",
            "",
            "| task | circuit | process | params | specs | ms/sim | random ms/sim | reference | front (cells) "
            "| random median | random > 0 | random@5 > 0 | random | BO | centre | reference | constant | lookup |",
            "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in mine:
            circuit = re.split(r"[(:,]| on ", r["description"])[0].strip()
            median = "-" if r["random_median"] is None else f"{r['random_median']:.3f}"
            nonzero = "-" if r["random_nonzero"] is None else f"{100 * r['random_nonzero']:.0f} %"
            timing = "-"
            if r.get("random_ms_median") is not None:
                timing = f"{r['random_ms_median']:.0f} / {r['random_ms_max']:.0f}"
            b = baselines.get(r["task"], {})
            share = _cell(None if b.get("random_share") is None else 100 * b["random_share"], ".0f")
            front = "-" if r.get("front") is None else f"{r['front']} ({r['cells']})"
            scores = " | ".join(_cell(b.get(name), ".3f") for name in BASELINE_COLUMNS)
            lines.append(
                f"| {r['task']} | {circuit} | {r['process']} | {r['params']} | {'; '.join(r['specs'])} | "
                f"{r['ms_per_sim']:.1f} | {timing} | {r['reference_score']:.3f} | {front} | {median} | {nonzero} | "
                f"{share}{' %' if share != '-' else ''} | {scores} |"
            )
        lines.append("")
    return "\n".join(lines)
