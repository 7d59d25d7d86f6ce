"""Commands on query datasets and task difficulty: `data build|show`, `tasks calibrate`."""

from __future__ import annotations

import json
from pathlib import Path

from simworkers.query import QUERY_RULES
from system.cli.common import BACKEND_NAMES, CliError, console, positive_int


def _tasks(names: list[str] | None):
    from simworkers.catalog import resolve_tasks

    try:
        return resolve_tasks(names or ["all"])
    except KeyError as exc:
        raise CliError(exc.args[0]) from None


def cmd_data_build(args) -> int:
    from simworkers.front import FrontError
    from simworkers.query import QueryError
    from system.evaluation.checks import LocalRunner
    from system.evaluation.datasets import build_datasets, build_work, default_plan
    from system.evaluation.progress import WorkProgress

    plan = default_plan(_tasks(args.tasks), args.train_queries, args.eval_queries)
    label = "front simulations and queries" if args.rule == "front" else "queries"
    try:
        with (
            LocalRunner(args.backend, args.workers) as runner,
            WorkProgress(build_work(plan, args.rule), label=label) as progress,
        ):
            built = build_datasets(plan, runner, args.data, progress.advance, rule=args.rule)
    except (QueryError, FrontError) as exc:
        raise CliError(str(exc)) from None
    for b in built:
        what = "on the front" if b.split == "front" else "queries"
        print(f"{b.split:5s} {b.task:24s} {b.queries:6d} {what:12s} {'kept (fresh)' if b.kept else 'built'}  {b.path}")
    return 0


def cmd_data_show(args) -> int:
    from simworkers.dataset import (
        dataset_path,
        fresh_front_path,
        front_path,
        read_front,
        shipped_front_path,
        stored_count,
    )
    from simworkers.query import QUERY_RULES

    for task in _tasks(args.tasks):
        fresh = fresh_front_path(task, args.data)
        if fresh is not None:
            shipped = " (shipped with the task)" if fresh == shipped_front_path(task) else ""
            print(f"front {task.name:24s} {read_front(task, args.data).summary()}  {fresh}{shipped}")
        elif front_path(task, args.data).exists() or (shipped_front_path(task) or front_path(task)).exists():
            print(f"front {task.name:24s} STALE: rebuild with `tlgrpo data build --tasks {task.name}`")
        for rule in QUERY_RULES:
            for split in ("train", "eval"):
                path = dataset_path(task, split, args.data, rule)
                if not path.exists():
                    continue
                count = stored_count(task, split, args.data, rule)
                state = (
                    f"{count} queries ({rule})" if count else f"STALE: rebuild with `tlgrpo data build --rule {rule}`"
                )
                print(f"{split:5s} {task.name:24s} {state:40s} {path}")
    return 0


def cmd_tasks_calibrate(args) -> int:
    from rich.table import Table

    from simworkers.dataset import DatasetError, load_queries
    from simworkers.front import FrontError
    from simworkers.query import front_query, seed_for
    from system.agent.policies import BayesOpt
    from system.evaluation.calibration import calibrate, estimate_from_front, suite_problems
    from system.evaluation.checks import LocalRunner
    from system.evaluation.datasets import QuerySource, ensure_front

    rows = []
    with LocalRunner(args.backend, args.workers) as runner:

        async def simulate(task, design):
            return runner.run(task, [design])[0]

        supply = QuerySource(simulate, root=args.data, on_the_fly=True)
        for task in _tasks(args.tasks):
            try:
                front, _ = ensure_front(task, runner, args.data)
            except FrontError as exc:
                raise CliError(str(exc)) from None
            if args.from_front:
                rows.append(estimate_from_front(task, front, args.queries))
            else:
                try:
                    queries = load_queries(task, "eval", args.queries, root=args.data)
                except DatasetError:
                    queries = [front_query(task, seed_for("eval", i), front) for i in range(args.queries)]
                rows.append(calibrate(task, queries, runner, supply, BayesOpt(args.bo)))
            if not args.json:
                print(f"{task.name}: {json.dumps(rows[-1].to_json())}", flush=True)
    problems = [f"{r.task}: {p}" for r in rows for p in r.problems()] if args.from_front else suite_problems(rows)
    report = {"tasks": [r.to_json() for r in rows], "problems": problems, "estimated_from_front": args.from_front}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        how = "estimated from each front's samples, no BO" if args.from_front else "simulated"
        table = Table(title=f"calibration on {args.queries} evaluation queries per task, budget 5 ({how})")
        columns = ("task", "domain", "random > 0", "random best@5", "BO best@5", "centre", "reference", "constant")
        for col in (*columns, "verdict"):
            table.add_column(col)
        for r in rows:
            bo = "-" if args.from_front else f"{r.bo_best:.3f}"
            table.add_row(
                r.task,
                r.domain,
                f"{r.random_nonzero:.0%}",
                f"{r.random_best:.3f}",
                bo,
                f"{r.centre:.3f}",
                f"{r.reference:.3f}",
                f"{r.constant:.3f}",
                "; ".join(r.problems()) or "ok",
            )
        console().print(table)
        for p in problems:
            print(f"outside the bounds: {p}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 1 if problems else 0


def add_commands(sub, tasks) -> None:
    """data build|show; tasks calibrate (on the `tasks` group)."""
    data = sub.add_parser("data", help="query datasets (Parquet)").add_subparsers(dest="action", required=True)
    p = data.add_parser("build", help="build the training and evaluation query sets (idempotent)")
    p.add_argument("--tasks", action="append", help="task names or sets (default all)")
    p.add_argument("--train-queries", type=int, default=10_000, help="over the in-domain tasks (default 10000)")
    p.add_argument("--eval-queries", type=int, default=100, help="per task (default 100)")
    p.add_argument("--data", type=Path, help="dataset folder (default TLGRPO_DATA_DIR or ~/.cache/tl-grpo/data)")
    p.add_argument(
        "--rule",
        choices=tuple(QUERY_RULES),
        default="front",
        help="front (default: each task's trade-off front, built once) or near-reference (the learning tests' rule)",
    )
    p.add_argument("--workers", type=positive_int, default=None, help="parallel simulations (default: cores)")
    p.add_argument("--backend", default="shared", choices=BACKEND_NAMES)
    p.set_defaults(func=cmd_data_build)
    p = data.add_parser("show", help="the datasets present, their sizes, and whether they are stale")
    p.add_argument("--tasks", action="append")
    p.add_argument("--data", type=Path)
    p.set_defaults(func=cmd_data_show)

    p = tasks.add_parser("calibrate", help="difficulty on evaluation queries against SPEC's bounds")
    p.add_argument("tasks", nargs="*", help="task names or sets (default all)")
    p.add_argument("--queries", type=positive_int, default=100, help="evaluation queries per task (default 100)")
    p.add_argument("--bo", default="ei-lhs2", help="the BO configuration (default: the `bo` policy's)")
    p.add_argument("--data", type=Path, help="read the evaluation set and the front from here (built when absent)")
    p.add_argument(
        "--from-front",
        action="store_true",
        help="estimate random search and the shortcuts from the front's own samples, no simulation (quick, for tuning)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--workers", type=positive_int, default=None)
    p.add_argument("--backend", default="shared", choices=BACKEND_NAMES)
    p.set_defaults(func=cmd_tasks_calibrate)
