"""`tlgrpo demo`, the README's main job. By default the learning demo: the tiny model learns where
the answer is known (the `smoke` learning test's environment) and its held-out curve rises past
random search. With --config, that training config's run instead (`smollm2-demo`)."""

from __future__ import annotations

import json
from pathlib import Path

from system.cli.common import positive_int
from system.cli.learning import plot_curve

DEMO_TEST = "smoke"
DEMO_BASELINES = "[random,bo,centre,constant]"


def cmd_demo(args) -> int:
    return learning_demo(args) if args.config is None else config_demo(args)


def learning_demo(args) -> int:
    """`tlgrpo demo`: the `smoke` learning test's environment run for a fixed number of steps and
    reported, not judged. The tiny model, from a format warm-up on random values, learns the
    resistor value that meets a one-parameter filter's near-reference queries; its held-out curve
    is printed and saved, then one table: the policy before and after, random search, BO, the
    middle of the range (`centre`, the known answer there) and the best constant design."""
    import time

    from system.evaluation.evaluate import markdown_table
    from system.rl.learning import load_learning_test, run_learning_test

    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    overrides = [
        "pass.threshold=null",
        f"pass.max_steps={args.steps}",
        "pass.max_seconds=1200",
        f"run.eval_baselines={DEMO_BASELINES}",
        "run.name=demo",
        *args.overrides,
    ]
    cfg, rule = load_learning_test(DEMO_TEST, overrides)
    a = cfg.algorithm
    print(
        f"demo: the tiny model on {', '.join(cfg.tasks.train)} ({rule.description}), in {out}\n"
        f"  1. format warm-up: {cfg.warmup.episodes} synthetic episodes with random values\n"
        f"  2. the warmed-up policy, random search, BO, centre and constant on {cfg.run.eval_queries} held-out "
        "queries\n"
        f"  3. {rule.max_steps} TL-GRPO steps of B={a.queries_per_step} queries x G={a.group_size} samples x "
        f"T={a.budget} turns, the policy evaluated on the same queries every {cfg.run.eval_every} steps",
        flush=True,
    )
    result = run_learning_test(DEMO_TEST, str(out), overrides).to_json()
    result["name"] = "demo"
    title = f"tlgrpo demo: the tiny model on {', '.join(cfg.tasks.train)}, held-out best@{a.budget}"
    plot_curve(result, out / "learning_curve.png", title)
    (out / "learning_curve.json").write_text(json.dumps(result, indent=2))
    curve = result["curve"]
    print(f"\nheld-out best@{a.budget} of the policy as it trains (random search {curve[0].get('random', 0):.3f}):")
    for point in curve:
        print(f"  step {point['step']:3d}  {point['seconds']:6.0f} s  {point['value']:.3f}")
    first, last = out / "eval" / "step_000000", out / "eval" / f"step_{curve[-1]['step']:06d}"
    before = json.loads((first / "results.json").read_text())
    final = json.loads((last / "results.json").read_text())
    for row in before["rows"]:
        row["method"] = row["method"].replace(f"{a.name}@0", "warmed-up policy, before TL-GRPO")
    for row in final["rows"]:
        row["method"] = row["method"].replace(f"{a.name}@{curve[-1]['step']}", f"after {curve[-1]['step']} steps")
    final["rows"] = before["rows"] + [r for r in final["rows"] if r["method"].startswith("after ")]
    print(markdown_table(final))
    print(
        f"{result['steps']} steps, {result['seconds']:.0f} s in all. Run folder {out}: learning_curve.png (the curve "
        "against steps and seconds, the baselines as lines), metrics.jsonl, eval/ (tables, episodes, turn_curves.png), "
        "warmup/, final/ (the trained policy)"
    )
    return 0


def config_demo(args) -> int:
    """A training config's run (smollm2-demo: SmolLM2-135M-Instruct given a format warm-up and a
    few TL-GRPO steps), evaluated before and after; one table with both evaluations."""
    import time

    from system.config import load_config
    from system.evaluation.evaluate import markdown_table
    from system.rl.train import Trainer

    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg = load_config(
        args.config, [f"run.out_dir={out}", "run.eval_at_start=true", "run.eval_base_model=true", *args.overrides]
    )
    a, w = cfg.algorithm, cfg.warmup
    start = "format warm-up" if w.episodes else "base model"
    print(
        f"demo: {cfg.model.path or 'the tiny model'} on {', '.join(cfg.tasks.train)}, in {out}\n"
        + (f"  1. format warm-up: {w.episodes} synthetic episodes with random designs\n" if w.episodes else "")
        + f"  {1 + bool(w.episodes)}. the starting policy"
        + (" and the base model before its warm-up" if w.episodes and cfg.model.path else "")
        + f" on {cfg.run.eval_queries} held-out queries per task\n"
        f"  {2 + bool(w.episodes)}. {cfg.run.steps} TL-GRPO steps of B={a.queries_per_step} queries x "
        f"G={a.group_size} samples x T={a.budget} turns\n"
        f"  {3 + bool(w.episodes)}. the trained policy, random search and BO on the same queries",
        flush=True,
    )
    started = time.perf_counter()
    result = Trainer(cfg).run()
    first, last = out / "eval" / "step_000000", out / "eval" / f"step_{cfg.run.steps:06d}"
    before = json.loads((first / "results.json").read_text())
    final = json.loads((last / "results.json").read_text())
    renamed = {f"{a.name}@0": f"{start}, before TL-GRPO", f"hf:{cfg.model.path}": "base model, zero-shot"}
    for row in before["rows"]:
        for method, name in renamed.items():
            row["method"] = row["method"].replace(method, name)
    final["rows"] = before["rows"] + final["rows"]
    print(markdown_table(final))
    names = {**renamed, f"{a.name}@0": start, f"{a.name}@{cfg.run.steps}": "trained"}
    parsed = {**_replies_parsed(first), **_replies_parsed(last)}
    print(
        "replies that parse (a tool call or <Design End>): "
        + "; ".join(f"{names[m]} {ok} of {n}" for m, (ok, n) in parsed.items() if m in names)
    )
    state = result["state"]
    print(
        f"{state.step} TL-GRPO steps, {len(state.trained)} with an update (a step whose groups all scored alike "
        f"has none); {time.perf_counter() - started:.0f} s in all.\n"
        f"Run folder {out}: metrics.jsonl (per step), eval/ (tables, episodes, turn_curves.png), "
        + ("warmup/ (the warm-up's model and loss), " if w.episodes else "")
        + "final/ (the trained policy), wandb/ (offline unless a W&B key is configured: `wandb sync` uploads it)"
    )
    return 0


def _replies_parsed(folder: Path) -> dict[str, tuple[int, int]]:
    """Per method of an evaluation folder: (replies that parsed, replies), over the turns after
    the initial design."""
    counts: dict[str, tuple[int, int]] = {}
    for line in (folder / "episodes.jsonl").read_text().splitlines():
        episode = json.loads(line)
        turns = episode["turns"][1:]
        ok, n = counts.get(episode["policy"], (0, 0))
        counts[episode["policy"]] = (ok + sum(bool(t["format_ok"]) for t in turns), n + len(turns))
    return counts


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="the main job: a short TL-GRPO training on CPU, then the evaluation table")
    p.add_argument("overrides", nargs="*", help="key.sub=value on top of the config")
    p.add_argument(
        "--config",
        default=None,
        help="a training config's run instead of the learning demo: smollm2-demo (SmolLM2, about 15 minutes), tiny-cpu",
    )
    p.add_argument("--steps", type=positive_int, default=16, help="TL-GRPO steps of the learning demo (default 16)")
    p.add_argument("--out", default=None, help="run folder (default runs/demo-TIME)")
    p.set_defaults(func=cmd_demo)
