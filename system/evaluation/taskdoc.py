"""docs/tasks.md, written by `tlgrpo tasks doc` from fresh simulations, never by hand."""

from __future__ import annotations

import os
import platform
import re
from datetime import date


def render(rows: list[dict], n_random: int) -> str:
    lines = [
        "# Circuit tasks",
        "",
        f"Written by `tlgrpo tasks doc` on {date.today().isoformat()} ({platform.machine()}, "
        f"{os.cpu_count()} cores). ms/sim: one warm simulation of the reference design on one core "
        f"(shared-library backend). Random median: the median score of {n_random} designs drawn "
        "uniformly (in each parameter's scale) inside the ranges, against the nominal specs; the "
        "check wants it below 0.2 and the reference at 1.0. Random > 0: the share of those designs "
        "that score above 0 at all (how much signal a search starting from random gets).",
        "",
    ]
    for domain in ("in-domain", "out-of-domain"):
        mine = [r for r in rows if r["domain"] == domain]
        if not mine:
            continue
        lines += [
            f"## {domain.capitalize()} ({len(mine)} tasks)",
            "",
            "| task | circuit | process | params | specs | ms/sim | reference score | random median | random > 0 |",
            "|---|---|---|---:|---|---:|---:|---:|---:|",
        ]
        for r in mine:
            circuit = re.split(r"[(:,]| on ", r["description"])[0].strip()
            median = "-" if r["random_median"] is None else f"{r['random_median']:.3f}"
            nonzero = "-" if r["random_nonzero"] is None else f"{100 * r['random_nonzero']:.0f} %"
            lines.append(
                f"| {r['task']} | {circuit} | {r['process']} | {r['params']} | {'; '.join(r['specs'])} | "
                f"{r['ms_per_sim']:.1f} | {r['reference_score']:.3f} | {median} | {nonzero} |"
            )
        lines.append("")
    return "\n".join(lines)
