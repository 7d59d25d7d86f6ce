"""`tlgrpo plan CONFIG [key=value ...]`: what a training config costs on a cluster, before one is
rented. A dry run without weights (system/plan/)."""

from __future__ import annotations

import statistics
import time

from system.cli.common import CliError

CHARS_PER_TOKEN = 3.5  # English and numbers in a BPE vocabulary, where the model's tokenizer is not at hand


def _text_tokens(texts: list[str], folder) -> tuple[list[int], str]:
    """Token counts of `texts` with the model's tokenizer where its folder has one, else estimated."""
    if folder is not None and ((folder / "tokenizer.json").exists() or (folder / "tokenizer_config.json").exists()):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        return [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts], "the model's tokenizer"
    return [round(len(t) / CHARS_PER_TOKEN) for t in texts], f"{CHARS_PER_TOKEN} characters a token"


def prompt_sizes(cfg, folder) -> tuple[int, int, str]:
    """(first message with the tool schema, one tool response, how counted) for the largest of
    the config's training tasks."""
    import json

    from simworkers.catalog import resolve_tasks
    from simworkers.query import Query
    from simworkers.result import SimResult
    from system.agent.protocol import first_message, tool_message, tool_schema

    firsts, responses = [], []
    for task in resolve_tasks(cfg.tasks.train):
        query = Query(task.name, 0, "train", {p.name: p.reference for p in task.params}, task.specs)
        result = SimResult("ok", {m.name: 1.234e-6 for m in task.metrics})
        firsts.append(
            first_message(task, query, cfg.algorithm.budget, query.initial, result) + json.dumps(tool_schema(task))
        )
        responses.append(tool_message(task, query, result, 2))
    counts, how = _text_tokens(firsts + responses, folder)
    n = len(firsts)
    return max(counts[:n]), max(counts[n:]), how


def measure_sim_seconds(cfg) -> float:
    """Median seconds of a warm simulation of each training task's reference design, averaged
    over the tasks, on one core here."""
    from simworkers.backends import make_backend
    from simworkers.catalog import resolve_tasks

    backend = make_backend(cfg.sim.backend)
    try:
        medians = []
        for task in resolve_tasks(cfg.tasks.train):
            design = {p.name: p.reference for p in task.params}
            backend.simulate(task, design)  # loads the device models
            times = []
            for _ in range(3):
                start = time.perf_counter()
                backend.simulate(task, design)
                times.append(time.perf_counter() - start)
            medians.append(statistics.median(times))
        return statistics.fmean(medians)
    finally:
        backend.close()


CHECKPOINT_BYTES_PER_PARAM = 12  # fp32 weights and AdamW's two fp32 moments (learner/persist.py)


def checkpoint_line(params: int, every: int, upload_gbps: float) -> str:
    """What one save writes (every rank its shard, together the whole) and how long the upload of
    it takes at `upload_gbps` gigabits a second to a store (run.out_dir on s3:// or gs://)."""
    size = params * CHECKPOINT_BYTES_PER_PARAM
    seconds = size * 8 / (upload_gbps * 1e9)
    return (
        f"checkpoint  {size / 2**30:,.1f} GiB a save ({CHECKPOINT_BYTES_PER_PARAM} bytes a parameter: fp32 weights "
        f"and AdamW moments), every {every} steps; {seconds:,.0f} s to upload at {upload_gbps:g} Gbit/s "
        "(--upload-gbps), shared by the ranks that write their shards at once"
    )


def cmd_plan(args) -> int:
    from system.config import load_config
    from system.plan.architecture import config_folder, load_architecture
    from system.plan.arithmetic import Hardware, Workload
    from system.plan.check import make_plan, notes
    from system.plan.report import render

    for name, value in (("--gpus-per-node", args.gpus_per_node), ("--nodes", args.nodes)):
        if value < 1:
            raise CliError(f"{name} {value}: give a whole number of at least 1")
    for name, value in (
        ("--gpu-memory", args.gpu_memory),
        ("--decode-tok-s", args.decode_tok_s),
        ("--upload-gbps", args.upload_gbps),
    ):
        if not value > 0:
            raise CliError(f"{name} {value}: give a positive number")
    cfg = load_config(args.config, args.overrides)
    arch = load_architecture(cfg, args.architecture)
    _, folder = config_folder(cfg, args.architecture)
    prompt, response, counted = prompt_sizes(cfg, folder)
    sampling = cfg.rollout.sampling
    workload = Workload(
        cfg.algorithm.name,
        cfg.algorithm.queries_per_step,
        cfg.algorithm.group_size,
        cfg.algorithm.budget,
        prompt,
        response,
        args.new_tokens or sampling.max_new_tokens,
        cfg.rollout.max_prompt_tokens,
    )
    if args.sim_ms is not None:
        sim_s, sim_source = args.sim_ms / 1000, "given (--sim-ms)"
    else:
        sim_s, sim_source = measure_sim_seconds(cfg), "measured here: reference designs, one core"
    hardware = Hardware(args.gpus_per_node, args.gpu_memory, args.nodes)
    plan = make_plan(cfg, arch, hardware, workload, sim_s, args.decode_tok_s)
    print(render(plan, cfg, counted=counted, sim_source=sim_source, decode_tok_s=args.decode_tok_s))
    print(checkpoint_line(arch.params, cfg.run.checkpoint_every, args.upload_gbps))
    for line in notes(cfg, plan):
        print(f"note: {line}")
    if plan.problems:
        for p in plan.problems:
            print(f"refused: {p.key}: {p.message}")
        return 2
    print("fits: no key refused")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser(
        "plan", help="a dry run of a training config on a cluster: memory, tokens, FLOPs, simulations, refusals"
    )
    p.add_argument("config", help="a config name in configs/ or a YAML path")
    p.add_argument("overrides", nargs="*", help="key=value overrides, as for train")
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--gpu-memory", type=float, default=80, help="GiB per GPU")
    p.add_argument("--nodes", type=int, default=1, help="GPU nodes")
    p.add_argument("--architecture", help="a shipped architecture (configs/models/) instead of model.path's")
    p.add_argument("--new-tokens", type=int, help="generated tokens per turn (default: the cap, a worst case)")
    p.add_argument("--sim-ms", type=float, help="milliseconds per simulation (default: measured here)")
    p.add_argument(
        "--decode-tok-s",
        type=float,
        default=2000.0,
        help="generated tokens per second per engine at full batch (an assumption until measured)",
    )
    p.add_argument(
        "--upload-gbps",
        type=float,
        default=10.0,
        help="gigabits a second to the checkpoint store (run.out_dir on s3:// or gs://; default 10)",
    )
    p.set_defaults(func=cmd_plan)
