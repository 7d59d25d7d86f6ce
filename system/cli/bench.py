"""`tlgrpo bench sim|rollout|learner|decode`: each prints ratios against a baseline measured in the same run."""

from __future__ import annotations

import json

from actors.rollout import ENGINES
from system.cli.common import BACKEND_NAMES, CliError, positive_int, tasks_named


def cmd_bench_sim(args) -> int:
    from system.bench.sim import QUICK_TASKS, run_bench

    tasks = tasks_named(args.tasks or list(QUICK_TASKS))
    if not args.json:
        which = "" if args.tasks else " (the quick set; name tasks, or `all`, for others)"
        print(f"{len(tasks)} tasks{which}, {args.sims} designs each, backends {', '.join(args.backend)}")
        print(f"{'task':22s} {'backend':8s} {'raw ms':>8s} {'raw/s':>8s} {'pool/s':>8s} {'efficiency':>10s}")

    def show(r) -> None:  # each row as it is measured: `all` takes minutes
        print(
            f"{r.task:22s} {r.backend:8s} {r.raw_ms_median:8.1f} {r.raw_per_s:8.1f} "
            f"{r.pool_per_s:8.1f} {r.pool_efficiency:10.3f}",
            flush=True,
        )

    report = run_bench(tasks, args.backend, args.sims, on_row=None if args.json else show)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"cores {report['cores']}")
    for backend, s in report["backends"].items():
        print(f"pool_efficiency[{backend}] = {s['pool_efficiency']:.3f}")
    return 0


def cmd_bench_rollout(args) -> int:
    from simworkers.catalog import load_task
    from system.bench.rollout import run_rollout_bench

    try:
        task = load_task(args.task)
    except KeyError as exc:
        raise CliError(exc.args[0]) from None
    report = run_rollout_bench(
        args.model,
        task,
        args.queries,
        args.group,
        args.budget,
        args.max_new_tokens,
        replace=not args.no_replace,
        engine=args.engine,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    st = report["setting"]
    print(f"engine {st['engine']}, model {st['model']}, task {st['task']}, B={st['B']} G={st['G']} T={st['T']}")
    for key in ("rollout_s", "generation_alone_s", "simulation_alone_s", "critical_path_s", "traj_grpo_s"):
        print(f"{key:22s} {report[key]:8.2f}")
    print(
        f"overlap        {report['overlap']:.3f}\nagent_overhead {report['agent_overhead']:.3f} "
        f"({report['agent_overhead_vs_critical_path']:.3f} of the critical path)\n"
        f"tl_over_traj_time {report['tl_over_traj_time']:.3f} (simulations {report['simulations']})"
    )
    return 0


def cmd_bench_learner(args) -> int:
    from system.bench.learner import run_learner_bench

    report = run_learner_bench(
        args.model,
        args.world_size,
        args.samples,
        args.steps,
        args.micro_batch_tokens,
        args.device,
        dense_baseline=not args.no_dense_baseline,
        shared_groups=args.shared_groups,
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
        f"mfu {report['mfu']:.3f} ({report['flops_per_token'] / 1e6:.1f} MFLOP/token, "
        f"matmul peak {report['matmul_peak_flops'] / 1e9:.0f} GFLOP/s)"
    )
    if report["block_attention_speedup"] is not None:
        print(
            f"block_attention_speedup {report['block_attention_speedup']:.2f} "
            f"(dense mask {report['dense_mask_tokens_per_s']:.0f} tok/s)"
        )
    if report["shared_prefix_speedup"] is not None:
        print(
            f"shared_prefix_speedup {report['shared_prefix_speedup']:.2f} "
            f"(theory {report['shared_prefix_speedup_theory']:.2f})"
        )
    print(
        f"weight sync {report['weight_sync_s']:.3f} s for {report['weights_gb']:.4f} GB "
        f"({report['weight_sync_s_per_gb']:.2f} s/GB)"
    )
    return 0


def cmd_bench_decode(args) -> int:
    from system.bench.decode import run_decode_bench
    from system.models.install import resolve_model

    report = run_decode_bench(
        resolve_model(args.model), args.groups, args.rows_per_group, args.history, args.new_tokens, args.repeat
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    st = report["setting"]
    print(f"model {st['model']}, {st['rows']} rows of {st['history']}+ tokens, {st['new_tokens']} new tokens at most")
    print(f"growing cache (transformers' default) {report['dynamic_s']:6.2f} s  {report['dynamic_tok_s']:6.1f} tok/s")
    print(f"fixed-length cache (the engine's)     {report['static_s']:6.2f} s  {report['static_tok_s']:6.1f} tok/s")
    print(f"same ids: {report['same_ids']}\nstatic_speedup {report['static_speedup']:.3f}")
    return 0 if report["same_ids"] else 1


def cmd_bench_prefill(args) -> int:
    from pathlib import Path

    from actors.runtime_env import REPO_ROOT
    from system.agent.policies import VLLM_PYTHON
    from system.bench.prefill import DTYPES, run_prefill_bench
    from system.models.install import resolve_model

    python = args.python or VLLM_PYTHON
    if not Path(REPO_ROOT, python).is_file():  # a relative path is the repository's, as rollout.python
        raise CliError(f"--python {python}: no interpreter there (scripts/setup.sh builds .venv-vllm)")
    try:
        report = run_prefill_bench(
            resolve_model(args.model),
            str(Path(REPO_ROOT, python)),
            args.prompts,
            args.history,
            args.extension,
            args.new_tokens,
            args.kv_cache_mb,
        )
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    st = report["setting"]
    print(
        f"model {st['model']}, {st['prompts']} prompts of {st['history']} tokens, "
        f"+{st['extension']} cached, {st['new_tokens']} new"
    )
    for dtype in DTYPES:
        r = report[dtype]
        print(
            f"{dtype:9s} cold prefill {r['cold_prefill_s']:6.1f} s ({r['cold_prefill_tok_s']:6.0f} tok/s)  "
            f"cached extension {r['cached_extension_s']:5.1f} s "
            f"(prefix_cache_speedup {r['prefix_cache_speedup']:.2f})  "
            f"decode {r['decode_tok_s']:5.1f} tok/s"
        )
    for key in ("bf16_prefill_speedup", "bf16_cached_speedup", "bf16_decode_speedup"):
        print(f"{key} {report[key]:.3f}")
    return 0


def add_commands(sub) -> None:
    """bench sim, rollout, learner, decode, prefill"""
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="action", required=True)
    p = bench.add_parser("sim", help="simulation throughput raw and through the Ray pool")
    p.add_argument("tasks", nargs="*", help="task names or sets (default: a quick representative set; all: every task)")
    p.add_argument("--sims", type=positive_int, default=100, help="designs per task (default 100)")
    p.add_argument("--backend", action="append", choices=BACKEND_NAMES, help="backend(s) to measure (default both)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_sim)

    p = bench.add_parser("rollout", help="TL-GRPO rollout time against generation alone and simulation alone")
    p.add_argument("--model", help="HF model folder (default: a tiny model built from a config)")
    p.add_argument("--task", default="telescopic_sky130")
    p.add_argument("--queries", type=positive_int, default=4, help="B")
    p.add_argument("--group", type=positive_int, default=4, help="G")
    p.add_argument("--budget", type=positive_int, default=2, help="T")
    p.add_argument("--max-new-tokens", type=positive_int, default=32)
    p.add_argument("--no-replace", action="store_true", help="keep the model's own replies")
    p.add_argument("--engine", choices=ENGINES, default="hf", help="vllm: run with .venv-vllm's Python")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_rollout)

    p = bench.add_parser("decode", help="the HF engine's decode: fixed-length KV cache vs the growing one")
    p.add_argument("--model", default="smollm2-135m", help="an installed model's name or a Hugging Face folder")
    p.add_argument("--groups", type=positive_int, default=4, help="histories (B)")
    p.add_argument("--rows-per-group", type=positive_int, default=4, help="samples per history (G)")
    p.add_argument("--history", type=positive_int, default=1200, help="tokens per history")
    p.add_argument("--new-tokens", type=positive_int, default=48)
    p.add_argument("--repeat", type=positive_int, default=2, help="runs of each; the fastest counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_decode)

    p = bench.add_parser(
        "prefill", help="the vLLM engine on CPU: prefill, prefix cache and decode, float32 vs bfloat16"
    )
    p.add_argument("--model", default="smollm2-135m", help="an installed model's name or a Hugging Face folder")
    p.add_argument("--python", help="the vLLM environment's interpreter (default .venv-vllm/bin/python)")
    p.add_argument("--prompts", type=positive_int, default=16, help="histories read at once")
    p.add_argument("--history", type=positive_int, default=2500, help="tokens per history")
    p.add_argument("--extension", type=positive_int, default=200, help="tokens the next turn adds")
    p.add_argument("--new-tokens", type=positive_int, default=60)
    p.add_argument("--kv-cache-mb", type=positive_int, default=4096)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_prefill)

    p = bench.add_parser("learner", help="train-step speed against a bare forward+backward+step, packing, weight sync")
    p.add_argument("--model", default=None, help="a Hugging Face folder (default: the tiny model, built here)")
    p.add_argument("--world-size", type=positive_int, default=2)
    p.add_argument("--samples", type=positive_int, default=32, help="samples per training batch")
    p.add_argument("--steps", type=positive_int, default=3)
    p.add_argument("--micro-batch-tokens", type=positive_int, default=8192)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--no-dense-baseline", action="store_true", help="skip the dense-mask attention baseline")
    p.add_argument(
        "--shared-groups", type=int, default=8, help="turn groups in the shared-prefix comparison (0: skip it)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_learner)
