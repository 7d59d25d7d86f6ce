"""docs/tasks.md, written by `tlgrpo tasks doc` from fresh simulations, never by hand."""

from __future__ import annotations

import os
import platform
import re
from datetime import date


def baseline_columns(results: dict) -> dict[str, dict]:
    """Per task, from a committed `tlgrpo eval --policy bo --policy random` (results.json): both
    baselines' mean best@5 and the share of random search's designs that score above 0."""
    rows = {r["method"].split(" ")[0]: r for r in results.get("rows", [])}
    out: dict[str, dict] = {}
    for task in results.get("tasks", []):
        out[task] = {
            "random_best": rows.get("random", {}).get("per_task", {}).get(task),
            "bo_best": rows.get("bo", {}).get("per_task", {}).get(task),
            "random_share": rows.get("random", {}).get("nonzero_share", {}).get(task),
        }
    return out


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(rows: list[dict], n_random: int, baselines: dict | None = None) -> str:
    baselines = baselines or {}
    lines = [
        "# Circuit tasks",
        "",
        f"Written by `tlgrpo tasks doc` on {date.today().isoformat()} ({platform.machine()}, "
        f"{os.cpu_count()} cores). ms/sim: one warm simulation of the reference design on one core "
        "(shared-library backend); random ms/sim: the median and the slowest of the random designs below, "
        "one per core. Reference: its score against the nominal specs (must be 1.0). "
        f"Random median and random > 0: {n_random} random designs, five per evaluation query, each scored "
        "against its query's targets (the targets a witness design near the reference is known to "
        "meet; SPEC section 2). Random best@5, BO best@5 and random@5 > 0: from the committed "
        "baseline evaluation (`docs/baselines/`, 100 evaluation queries per task, budget 5). Witness: "
        "the share of the first 50 evaluation queries whose first witness draw simulates with every spec "
        "metric (a failed draw is redrawn, never kept). The "
        "bounds (`tlgrpo tasks calibrate` checks them): in-domain, at least 30 % of random designs "
        "above 0 and both baselines between 0.10 and 0.90 per task, averaging 0.35-0.65; "
        "out-of-domain, BO averaging 0.05-0.35.",
        "",
    ]
    for domain in ("in-domain", "out-of-domain"):
        mine = [r for r in rows if r["domain"] == domain]
        if not mine:
            continue
        lines += [
            f"## {domain.capitalize()} ({len(mine)} tasks)",
            "",
            "| task | circuit | process | params | specs | ms/sim | random ms/sim | reference | random median "
            "| random > 0 | random@5 > 0 | random best@5 | BO best@5 | witness |",
            "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
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
            lines.append(
                f"| {r['task']} | {circuit} | {r['process']} | {r['params']} | {'; '.join(r['specs'])} | "
                f"{r['ms_per_sim']:.1f} | {timing} | {r['reference_score']:.3f} | {median} | {nonzero} | "
                f"{share}{' %' if share != '-' else ''} | {_cell(b.get('random_best'), '.3f')} | "
                f"{_cell(b.get('bo_best'), '.3f')} | "
                f"{_cell(None if r.get('witness_rate') is None else 100 * r['witness_rate'], '.0f')}"
                f"{'' if r.get('witness_rate') is None else ' %'} |"
            )
        lines.append("")
    return "\n".join(lines)
