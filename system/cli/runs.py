"""Commands that train or evaluate policies: `eval`, `train`, `sft`, `report`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from actors.rollout import ENGINE_DTYPES
from simworkers.query import QUERY_RULES
from system.agent.endpoint import TOOL_MODES
from system.agent.episode import PROTOCOLS
from system.cli.common import BACKEND_NAMES, CliError, budget_list, non_negative_int, positive_int, probability
from system.evaluation.progress import WorkProgress
from system.runtime import init_ray

QUERY_RULE_NAMES = tuple(QUERY_RULES)


def cmd_eval(args) -> int:
    import asyncio
    import time

    from simworkers.catalog import resolve_tasks
    from simworkers.pool import SimPool
    from system.agent.registry import make_policy
    from system.evaluation.datasets import DatasetError, QuerySource
    from system.evaluation.evaluate import count_jobs, run_evaluation, summarise, write_outputs
    from system.models.install import ModelError, resolve_model

    try:
        tasks = resolve_tasks(args.tasks)
    except KeyError as exc:
        raise CliError(exc.args[0]) from None
    options = {
        "model": args.model,
        "api_key_env": args.api_key_env,
        "tools": args.tools,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        **({"top_p": args.top_p} if args.top_p is not None else {}),  # else each opener's default
        "seed": args.seed,
        "dtype": args.dtype,
        "resolve": resolve_model,
    }
    policies = []
    for spec in args.policy:
        try:
            policies.append(make_policy(spec, **options))
        except ModelError as exc:
            raise CliError(f"{spec}: {exc}") from None
        except (ValueError, OSError) as exc:
            raise CliError(str(exc)) from None
    protocols = args.protocol or ["multi-turn"]
    out = Path(args.out or f"runs/eval-{time.strftime('%Y%m%d-%H%M%S')}")
    identity = {
        "tasks": [t.name for t in tasks],
        "policies": args.policy,
        "protocols": protocols,
        "queries": args.queries,
        "query_source": "built from seeds" if args.on_the_fly else str(args.data or "datasets"),
        "query_rule": args.rule,
        "budget": args.budget,
        "dtype": args.dtype,  # the engine's arithmetic is part of what a language-model policy does
    }
    finished, records = _resume_or_start(out, identity, args.resume)
    total = count_jobs(tasks, policies, protocols, args.queries)
    init_ray(args.workers, object_store_mb=256)

    async def main():
        pool = SimPool(args.workers, args.backend)
        try:
            with WorkProgress(total, done=len(finished)) as progress, (out / "episodes.jsonl").open("a") as log:

                def on_done(episode):  # the log a killed evaluation resumes from
                    log.write(json.dumps(episode.to_json(), default=str) + "\n")
                    log.flush()
                    progress.advance()

                episodes = await run_evaluation(
                    tasks,
                    policies,
                    protocols,
                    args.queries,
                    args.budget,
                    pool.submit,
                    source=QuerySource(pool.submit, root=args.data, on_the_fly=args.on_the_fly, rule=args.rule),
                    concurrency=args.concurrency,
                    on_done=on_done,
                    finished=finished,
                )
            return episodes, pool.stats()
        finally:
            pool.shutdown()

    started = time.monotonic()
    try:
        episodes, stats = asyncio.run(main())
    except DatasetError as exc:
        raise CliError(f"{exc} (or pass --on-the-fly to build the queries from seeds now)") from None
    summary = summarise(episodes, tasks)
    settings = {
        **identity,
        "wall_s": round(time.monotonic() - started, 1),
        "resumed_episodes": len(finished),
        "simulations": sum(stats.completed.values()),
        "sim_status": stats.completed,
    }
    write_outputs(out, episodes, summary, settings, records)
    print((out / "results.md").read_text())
    print(
        f"wrote {out}/results.md, results.json, episodes.jsonl, turn_curves.png "
        f"({len(episodes)} episodes, {len(finished)} of them kept from before; "
        f"{settings['simulations']} simulations, {settings['wall_s']} s)"
    )
    if failed := sum(summary["failures"].values()):
        first = next(e.failure for e in episodes if e.failure)
        print(
            f"{failed} episodes ended on an infrastructure fault and are not in the table (first: {first}); "
            f"run the same command with --resume --out {out} to run them again",
            file=sys.stderr,
        )
        return 1
    return 0


IDENTITY_BEFORE_ITS_KEY = {"dtype": "auto"}  # an evaluation started before eval.json had the key
# (an evaluation from before the query rules ran on rule 2 datasets, which no longer load: not resumed)


def _resume_or_start(out: Path, identity: dict, resume: bool) -> tuple[dict, dict]:
    """The finished episodes of the evaluation in `out` when resuming one started with the same
    arguments, or with more queries a task (it grows: a task's first queries are the same whatever
    the count); otherwise `out` must hold no evaluation yet (nothing is overwritten)."""
    from system.evaluation.evaluate import load_finished

    started = out / "eval.json"
    if not resume:
        if started.exists() or (out / "episodes.jsonl").exists():
            raise CliError(f"--out {out} holds an evaluation already: add --resume to continue it, or another --out")
        out.mkdir(parents=True, exist_ok=True)
        started.write_text(json.dumps(identity, indent=2))
        return {}, {}
    if not started.is_file():
        raise CliError(f"--resume: {out} holds no evaluation (no eval.json); run without --resume to start one there")
    recorded = json.loads(started.read_text())
    before = {**IDENTITY_BEFORE_ITS_KEY, **recorded}
    more = isinstance(before.get("queries"), int) and identity["queries"] > before["queries"]
    for key, value in identity.items():
        if before.get(key) != value and not (key == "queries" and more):
            raise CliError(
                f"--resume: {out} was started with {key} = {before.get(key)!r}, not {value!r}; "
                "give the same arguments, or another --out"
            )
    if more:  # the first queries of a task's set are the same whatever the count: their episodes stay
        print(f"{out}: {before['queries']} -> {identity['queries']} queries a task; the finished episodes are kept")
        started.write_text(json.dumps({**recorded, "queries": identity["queries"]}, indent=2))
    return load_finished(out / "episodes.jsonl")


def _train_config(args):
    """CONFIG [key=value ...]; a first argument with `=` is an override of the default config."""
    from system.config import load_config

    if args.config and "=" in args.config:
        args.overrides, args.config = [args.config, *args.overrides], None
    return load_config(args.config, args.overrides)


def cmd_train(args) -> int:
    from system.rl.train import Trainer

    cfg = _train_config(args)
    result = Trainer(cfg, resume=args.resume).run()
    state = result["state"]
    print(
        f"trained {len(state.trained)} of {state.step} steps (weights version {state.version}); "
        f"checkpoints in {result['out_dir']}/checkpoints, final policy in {result['final_model']}"
    )
    return 0


def cmd_sft(args) -> int:
    from system.rl.sft import run_sft

    cfg = _train_config(args)
    report = run_sft(
        cfg,
        args.episodes,
        args.epochs,
        args.batch_episodes,
        args.lr,
        args.budgets,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        changes=args.changes,
    )
    print(
        f"format warm-up: {report['episodes']} synthetic episodes, {report['steps']} steps, loss "
        f"{report['first_loss']:.3f} -> {report['last_loss']:.3f}, {report['wall_s']:.0f} s\n"
        f"32 sampled first replies: {report['format_ok_rate']:.2f} in the protocol's format, "
        f"{report['accepted_rate']:.2f} that the tool takes (values inside the ranges)\n"
        f"start training from it: tlgrpo train CONFIG model.path={report['final_model']}"
    )
    return 0


def cmd_report(args) -> int:
    from system.evaluation.report import write_report

    root = Path(args.root)
    if not root.is_dir():
        raise CliError(f"no such folder: {root}")
    if args.keep:
        from system.evaluation.keep import keep_small_outputs

        kept = keep_small_outputs(root, Path(args.keep))
        print(f"kept {len(kept)} files of {root} in {args.keep}")
        root = Path(args.keep)
    out = write_report(root)
    print(out.read_text())
    print(f"wrote {out}")
    return 0


def add_commands(sub) -> None:
    """eval, train, sft, report"""
    p = sub.add_parser("eval", help="evaluate policies on held-out queries; writes tables, episodes and plots")
    p.add_argument(
        "--policy",
        action="append",
        required=True,
        help="random | bo | centre | reference | constant | lookup | hf:PATH | vllm:PATH | openai:BASE_URL "
        "(repeat for several)",
    )
    p.add_argument(
        "--rule",
        choices=QUERY_RULE_NAMES,
        default="front",
        help="the queries' rule: front (the benchmark, default) or near-reference (the learning tests' easy one)",
    )
    p.add_argument("--tasks", action="append", help="in-domain (default), out-of-domain, all, or task names")
    p.add_argument("--queries", type=positive_int, default=100, help="held-out queries per task (default 100)")
    p.add_argument("--data", type=Path, help="dataset folder (default TLGRPO_DATA_DIR or ~/.cache/tl-grpo/data)")
    p.add_argument(
        "--on-the-fly", action="store_true", help="build the queries from their seeds now instead of reading a dataset"
    )
    p.add_argument(
        "--protocol",
        action="append",
        choices=PROTOCOLS,
        help="for language-model policies (default multi-turn; repeat for both)",
    )
    p.add_argument("--budget", type=positive_int, default=5, help="simulations after the initial design (T)")
    p.add_argument("--out", help="output folder (default runs/eval-TIMESTAMP)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the killed or failed evaluation in --out: its finished episodes are kept, the rest run "
        "(with a larger --queries it grows to that many queries a task)",
    )
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="simulation actors")
    p.add_argument("--concurrency", type=positive_int, default=16, help="episodes in flight")
    p.add_argument("--backend", default="shared", choices=BACKEND_NAMES)
    p.add_argument("--model", help="model name for openai: policies (default the server's only model)")
    p.add_argument(
        "--tools",
        choices=TOOL_MODES,
        default="auto",
        help="openai: policies' tool mode: native sends `tools`, text puts the tool block in a system message, "
        "auto (default) probes the server and the model's template once and says which it took",
    )
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the API key")
    p.add_argument("--max-new-tokens", type=positive_int, default=512)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument(
        "--top-p",
        type=probability,
        default=None,
        help="nucleus sampling (default 0.95 for hf: and vllm: policies, the server's own for openai:)",
    )
    p.add_argument("--seed", type=int, default=None, help="sampling seed for hf: policies")
    p.add_argument(
        "--dtype",
        choices=ENGINE_DTYPES,
        default="auto",
        help="hf: and vllm: policies' weights (auto: the checkpoint's for vLLM, float32 for HF; bfloat16 is faster "
        "on CPU, see tlgrpo bench prefill)",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a policy: tlgrpo train CONFIG [key=value ...]")
    p.add_argument("config", nargs="?", default=None, help="a config file or a shipped config name (default tiny-cpu)")
    p.add_argument("overrides", nargs="*", help="key.sub=value, e.g. algorithm.group_size=4 run.steps=2")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in run.out_dir")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sft", help="format warm-up on synthetic protocol episodes (random designs)")
    p.add_argument("config", nargs="?", default=None, help="a config file or a shipped config name (default tiny-cpu)")
    p.add_argument("overrides", nargs="*", help="key.sub=value; run.out_dir says where the warmed-up model goes")
    p.add_argument("--episodes", type=positive_int, default=256)
    p.add_argument("--epochs", type=positive_int, default=3)
    p.add_argument("--batch-episodes", type=positive_int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--budgets",
        type=budget_list,
        default=None,
        help="comma-separated episode budgets, cycled (default: algorithm.budget), e.g. 3,5",
    )
    p.add_argument("--checkpoint-every", type=positive_int, default=20, help="steps between warm-up checkpoints")
    p.add_argument(
        "--changes",
        type=non_negative_int,
        default=0,
        help="each synthetic call sets 1 to N parameters (drawn at random) and keeps the rest; 0: whole designs",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the warm-up in run.out_dir (its episodes, its latest checkpoint), given the flags it began with",
    )
    p.set_defaults(func=cmd_sft)

    p = sub.add_parser("report", help="tables and figures of a comparison folder (scripts/compare.sh)")
    p.add_argument("root", help="the folder scripts/compare.sh wrote, e.g. runs/compare")
    p.add_argument(
        "--keep",
        metavar="DEST",
        help="first copy the small outputs of ROOT's finished stages (metrics, eval results, gzipped episodes; "
        "no checkpoint or model) into DEST, a folder to commit, and write the report there",
    )
    p.set_defaults(func=cmd_report)
