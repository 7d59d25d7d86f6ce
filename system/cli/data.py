"""Commands on query datasets and task difficulty: `data build|show`, `tasks calibrate`."""

from __future__ import annotations

import json
from pathlib import Path

from system.cli.common import BACKEND_NAMES, CliError, console, positive_int


def _tasks(names: list[str] | None):
    from simworkers.catalog import resolve_tasks

    try:
        return resolve_tasks(names or ["all"])
    except KeyError as exc:
        raise CliError(exc.args[0]) from None


def cmd_data_build(args) -> int:
    from simworkers.query import QueryError
    from system.evaluation.checks import LocalRunner
    from system.evaluation.datasets import build_datasets, default_plan
    from system.evaluation.progress import WorkProgress

    plan = default_plan(_tasks(args.tasks), args.train_queries, args.eval_queries)
    total = sum(count for _, _, count in plan)
    try:
        with LocalRunner(args.backend, args.workers) as runner, WorkProgress(total, label="queries") as progress:
            built = build_datasets(plan, runner, args.data, progress.advance)
    except QueryError as exc:
        raise CliError(str(exc)) from None
    for b in built:
        print(f"{b.split:5s} {b.task:24s} {b.queries:6d} queries  {'kept (fresh)' if b.kept else 'built'}  {b.path}")
    return 0


def cmd_data_show(args) -> int:
    from simworkers.dataset import dataset_path, stored_count

    for task in _tasks(args.tasks):
        for split in ("train", "eval"):
            path = dataset_path(task, split, args.data)
            if not path.exists():
                continue
            count = stored_count(task, split, args.data)
            state = f"{count} queries" if count else "STALE: rebuild with `tlgrpo data build`"
            print(f"{split:5s} {task.name:24s} {state:40s} {path}")
    return 0


def cmd_tasks_calibrate(args) -> int:
    from rich.table import Table

    from simworkers.dataset import DatasetError, load_queries, seeds
    from simworkers.query import build_queries
    from system.agent.policies import BayesOpt
    from system.evaluation.calibration import calibrate, suite_problems
    from system.evaluation.checks import LocalRunner

    rows = []
    with LocalRunner(args.backend, args.workers) as runner:
        for task in _tasks(args.tasks):
            try:
                queries = load_queries(task, "eval", args.queries, root=args.data)
            except DatasetError:
                queries = build_queries(task, seeds("eval", args.queries), runner.run)
            rows.append(calibrate(task, queries, runner, BayesOpt(args.bo)))
            if not args.json:
                print(f"{task.name}: {json.dumps(rows[-1].to_json())}", flush=True)
    problems = suite_problems(rows)
    if args.json:
        print(json.dumps({"tasks": [r.to_json() for r in rows], "problems": problems}, indent=2))
    else:
        table = Table(title=f"calibration on {args.queries} evaluation queries per task, budget 5")
        for col in ("task", "domain", "witness ok", "random > 0", "random best@5", "BO best@5", "ms/sim", "verdict"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r.task,
                r.domain,
                f"{r.witness_rate:.0%}",
                f"{r.random_nonzero:.0%}",
                f"{r.random_best:.3f}",
                f"{r.bo_best:.3f}",
                f"{r.ms_per_sim:.1f}",
                "; ".join(r.problems()) or "ok",
            )
        console().print(table)
        for p in problems:
            print(f"outside the bounds: {p}")
    if args.out:
        Path(args.out).write_text(json.dumps({"tasks": [r.to_json() for r in rows], "problems": problems}, indent=2))
    return 1 if problems else 0


def add_commands(sub, tasks) -> None:
    """data build|show; tasks calibrate (on the `tasks` group)."""
    data = sub.add_parser("data", help="query datasets (Parquet)").add_subparsers(dest="action", required=True)
    p = data.add_parser("build", help="build the training and evaluation query sets (idempotent)")
    p.add_argument("--tasks", action="append", help="task names or sets (default all)")
    p.add_argument("--train-queries", type=int, default=10_000, help="over the in-domain tasks (default 10000)")
    p.add_argument("--eval-queries", type=int, default=100, help="per task (default 100)")
    p.add_argument("--data", type=Path, help="dataset folder (default TLGRPO_DATA_DIR or ~/.cache/tl-grpo/data)")
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
    p.add_argument("--data", type=Path, help="read the evaluation set from here (built now when absent)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--workers", type=positive_int, default=None)
    p.add_argument("--backend", default="shared", choices=BACKEND_NAMES)
    p.set_defaults(func=cmd_tasks_calibrate)
