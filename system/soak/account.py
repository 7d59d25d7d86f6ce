"""The soak's account, from plain records: what was asked of the simulators and answered, what
the learner trained and whether any batch was trained twice or skipped, and how long each
recovery took. Pure functions, tested without Ray."""

from __future__ import annotations

import statistics
from collections import Counter


def lineage(trained: list[int], steps: int) -> dict:
    """The final model's history of updates (the last checkpoint's `trained`): every step once,
    in order, none skipped."""
    counts = Counter(trained)
    return {
        "steps": steps,
        "trained": len(trained),
        "trained_twice": sum(n - 1 for n in counts.values() if n > 1),
        "skipped": sorted(set(range(steps)) - set(trained)),
        "in_order": trained == sorted(trained),
    }


def discarded_updates(updates: list[int], trained: list[int]) -> int:
    """Updates the learner made that the final model does not hold: work after a checkpoint that
    died with a learner and was trained again from that checkpoint (never twice in the model)."""
    return len(updates) - len(trained)


def data_position(queries_by_step: dict[int, list[tuple]]) -> dict:
    """Every time a step ran (again after a recovery) it drew the same queries."""
    reruns = {s: v for s, v in queries_by_step.items() if len(v) > 1}
    differing = sorted(s for s, v in reruns.items() if any(q != v[0] for q in v[1:]))
    return {"steps_run_again": len(reruns), "steps_with_other_queries": differing}


def time_to_next_update(faults: list[tuple[float, str]], updates_at: list[float]) -> dict[str, list[float]]:
    """For each fault (time, kind): seconds until the learner next completed an update."""
    out: dict[str, list[float]] = {}
    for at, kind in faults:
        later = [u for u in updates_at if u > at]
        if later:
            out.setdefault(kind, []).append(min(later) - at)
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def markdown(report: dict) -> str:
    """The tables of docs/reliability.md."""
    faults, sims, train = report["faults"], report["simulations"], report["training"]
    lines = [
        f"Seed {report['seed']}, {report['wall_s'] / 60:.1f} minutes, {train['lineage']['steps']} training steps.",
        "",
        "| fault injected | count |",
        "|---|---:|",
        *(f"| {kind} | {n} |" for kind, n in faults.items()),
        f"| **simulation faults** | **{report['simulation_faults']}** |",
        f"| **learner or rollout deaths** | **{report['deaths']}** |",
        "",
        "| simulations | load | training | all |",
        "|---|---:|---:|---:|",
    ]
    rows = ["requested", *sorted({k for part in sims.values() for k in part["answered"]}), "lost"]
    for row in rows:
        cells = []
        for part in ("load", "training"):
            p = sims[part]
            cells.append(p[row] if row in ("requested", "lost") else p["answered"].get(row, 0))
        lines.append(
            f"| {row if row in ('requested', 'lost') else 'answered ' + row} | {cells[0]} | {cells[1]} | "
            f"{cells[0] + cells[1]} |"
        )
    load = sims["load"]
    lin = train["lineage"]
    lines += [
        "",
        f"Answers checked against the design that asked (ordinary designs: the RC corner to 1 %; hangs: "
        f"a timeout; crashes: a failure): {load['checked_right']} right, {load['checked_wrong']} wrong "
        f"({load['infrastructure']} given up as infrastructure after 3 lost actors). "
        f"Training requests withdrawn with a step that a recovery ran again: {sims['training']['withdrawn']}.",
        "",
        "| training | |",
        "|---|---:|",
        f"| steps trained (final model) | {lin['trained']} of {lin['steps']} |",
        f"| steps trained twice | {lin['trained_twice']} |",
        f"| steps skipped | {len(lin['skipped'])} |",
        f"| updates discarded with a lost learner, trained again | {train['discarded_updates']} |",
        f"| steps run again, same queries | {train['data_position']['steps_run_again']} "
        f"({len(train['data_position']['steps_with_other_queries'])} with other queries) |",
        f"| recoveries by the driver (rebuild from a checkpoint) | {len(train['recoveries'])} |",
        "",
        "| fault | count | seconds to the next learner update (min / median / max) |",
        "|---|---:|---|",
        *(f"| {kind} | {len(v)} | {summary(v)} |" for kind, v in report["recovery_s"].items()),
    ]
    return "\n".join(lines) + "\n"
