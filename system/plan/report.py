"""The plan as text: what each number is, and where it comes from."""

from __future__ import annotations

from system.config import TrainConfig
from system.plan.arithmetic import GIB, SIM_BURST_S, Plan


def _gib(n: float) -> str:
    return f"{n / GIB:,.1f} GiB"


def _count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:,.2f}{unit}"
    return f"{n:,.0f}"


def render(plan: Plan, cfg: TrainConfig, *, counted: str, sim_source: str, decode_tok_s: float) -> str:
    a, w, hw, m, t = plan.arch, plan.workload, plan.hardware, plan.learner, plan.tokens
    lc, rc = cfg.learner, cfg.rollout
    lines = [
        f"model       {a.name}: {a.model_class}, {a.params:,} parameters ({_count(a.params)}), "
        f"{_count(a.active_params)} active per token"
        + (f", {a.experts} experts top-{a.experts_per_token}" if a.experts else "")
        + (f", experts via {lc.experts}" if a.experts and lc.device == "cuda" else ""),
        f"cluster     {hw.nodes} node(s) x {hw.gpus_per_node} GPUs x {hw.gpu_memory_gib:g} GiB = {hw.gpus} GPUs; "
        f"asked: learner {plan.learner_gpus} + rollout {rc.actors} x {plan.engine_gpus:g}",
        f"step        {w.algorithm}: B={w.queries} queries, G={w.group}, T={w.budget}; "
        f"prompt {w.prompt_tokens:,} tokens, "
        f"tool response {w.response_tokens:,} ({counted}), {w.new_tokens:,} new tokens a turn, "
        f"histories capped at {w.max_prompt_tokens:,}",
        "",
        f"learner, per {'GPU' if lc.device == 'cuda' else 'rank'} (world {lc.world_size}, "
        f"{'bf16 compute, ' if lc.device == 'cuda' and lc.bf16 else 'fp32, '}"
        f"micro-batch {max(lc.micro_batch_tokens, t.longest_row):,} tokens, activation checkpointing "
        f"{'on' if lc.activation_checkpointing else 'off'})",
        f"  weights (fp32 shard)     {_gib(m.weights)}",
        f"  gradients (fp32)         {_gib(m.gradients)}",
        f"  AdamW moments (fp32)     {_gib(m.optimizer)}",
        f"  gathered layers + root   {_gib(m.gathered)}",
    ]
    if m.reference:
        lines.append(f"  reference model          {_gib(m.reference)}")
    lines += [
        f"  activations (estimate)   {_gib(m.activations)}",
        f"  backward working set     {_gib(m.working)}",
        f"  CUDA and NCCL (planned)  {_gib(m.overhead)}",
        f"  total                    {_gib(m.total)}"
        + (f" of {hw.gpu_memory_gib:g} GiB" if lc.device == "cuda" else ""),
    ]
    if plan.engine is not None:
        e = plan.engine
        lines += [
            "",
            f"rollout engine ({rc.engine}, {e.gpus:g} GPU, 90 % of its memory): weights {_gib(e.weights)}, "
            f"KV cache {_gib(max(0, e.kv_cache))} = {e.kv_tokens:,} tokens "
            f"({a.kv_bytes_per_token:,} bytes a token) = {e.sequences} sequences of "
            f"{w.max_prompt_tokens + w.new_tokens:,} at once",
        ]
    shared, unshared = plan.flops_shared / 1e12, plan.flops_unshared / 1e12
    flops = f"learner FLOPs a step: {shared:,.1f} TFLOP shared ({unshared:,.1f} unshared)"
    if lc.device == "cuda":
        gpus = max(1, plan.learner_gpus)
        flops += f"; at 40 % of an H100's 989 bf16 TFLOP/s on {gpus} GPUs: {shared / (0.4 * 989 * gpus):,.0f} s"
    lines += [
        "",
        f"tokens a step: generated {t.generated:,}; prompts read {t.prefill:,} (before prefix caching); "
        f"trained {t.trained_shared:,} with each history once per group, {t.trained_unshared:,} without "
        f"({t.trained_unshared / max(1, t.trained_shared):.1f}x); longest learner row {t.longest_row:,}",
        flops,
        f"generation a step: {plan.generation_s:,.0f} s at {decode_tok_s:,.0f} tokens/s per engine (assumed) "
        f"over {rc.actors if plan.engine_gpus else 1} engine(s)",
        f"simulations a step: {t.simulations:,} x {1000 * plan.sim_seconds:.1f} ms ({sim_source}) = "
        f"{t.simulations * plan.sim_seconds:,.0f} core-seconds; a turn's burst of {w.queries * w.group:,} "
        f"finishes within {SIM_BURST_S:g} s on {plan.sim_actors} simulation actor(s) "
        f"(sim.min_workers {cfg.sim.min_workers}, sim.max_workers {cfg.sim.max_workers})",
        f"weight sync: {_gib(plan.sync_bytes)} an update to each engine"
        + (f", {-(-plan.sync_bytes // (rc.weight_bucket_mb * 2**20)):,} buckets of {rc.weight_bucket_mb} MiB"),
    ]
    return "\n".join(lines)
