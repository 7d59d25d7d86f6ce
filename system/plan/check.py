"""A config's plan and what refuses it: GPUs the config asks for against the cluster, memory per
learner GPU and per rollout engine, and the attention and experts implementations it names
against what this environment has installed. Each problem names the config key and the fix."""

from __future__ import annotations

import importlib.util
import math

from system.config import TrainConfig
from system.plan.architecture import Architecture
from system.plan.arithmetic import (
    GIB,
    Hardware,
    Plan,
    Problem,
    Workload,
    engine_memory,
    learner_flops,
    learner_memory,
    sim_actors_needed,
    step_tokens,
)

FIX_HEADROOM = 0.95  # a suggested fix leaves this share of a GPU's memory planned


def make_plan(
    cfg: TrainConfig,
    arch: Architecture,
    hardware: Hardware,
    workload: Workload,
    sim_seconds: float,
    decode_tok_s: float,
) -> Plan:
    lc, rc = cfg.learner, cfg.rollout
    gpu = lc.device == "cuda"
    tokens = step_tokens(workload)
    memory = learner_memory(
        arch,
        lc.world_size,
        max(lc.micro_batch_tokens, tokens.longest_row),
        gpu=gpu,
        bf16=lc.bf16,
        checkpointing=lc.activation_checkpointing,
        reference=lc.loss.kl_coef > 0,
    )
    engine_gpus = rc.gpus_per_actor if rc.gpus_per_actor > 0 else 0.0
    longest = workload.max_prompt_tokens + workload.new_tokens
    engine = engine_memory(arch, engine_gpus, int(hardware.gpu_memory_gib * GIB), longest) if engine_gpus else None
    recompute = lc.old_logprobs == "learner"
    flops = {
        n: learner_flops(arch, t, recompute_old=recompute, checkpointing=lc.activation_checkpointing)
        for n, t in (("shared", tokens.trained_shared), ("unshared", tokens.trained_unshared))
    }
    engines = rc.actors if engine_gpus else 1
    generation_s = tokens.generated / (decode_tok_s * engines)
    plan = Plan(
        arch=arch,
        hardware=hardware,
        workload=workload,
        learner=memory,
        learner_gpus=lc.world_size if gpu else 0,
        engine=engine,
        engine_gpus=engine_gpus,
        tokens=tokens,
        flops_shared=flops["shared"],
        flops_unshared=flops["unshared"],
        sim_seconds=sim_seconds,
        generation_s=generation_s,
        sim_actors=sim_actors_needed(workload.queries * workload.group, sim_seconds),
        sync_bytes=2 * arch.params if (gpu and lc.bf16) else 4 * arch.params,
    )
    plan.problems = problems(cfg, plan)
    return plan


def problems(cfg: TrainConfig, plan: Plan) -> list[Problem]:
    lc, rc = cfg.learner, cfg.rollout
    out: list[Problem] = []
    hw, arch = plan.hardware, plan.arch
    asked = plan.learner_gpus + math.ceil(rc.actors * plan.engine_gpus)
    if asked > hw.gpus:
        out.append(
            Problem(
                "learner.world_size",
                f"the config asks for {asked} GPUs (learner.world_size {plan.learner_gpus} + rollout.actors "
                f"{rc.actors} x rollout.gpus_per_actor {rc.gpus_per_actor:g}) and the cluster has {hw.gpus}: "
                f"set learner.world_size={max(1, hw.gpus - math.ceil(rc.actors * plan.engine_gpus))} "
                "or fewer rollout.actors, or add nodes",
            )
        )
    capacity = int(hw.gpu_memory_gib * GIB) if lc.device == "cuda" else None
    if capacity and plan.learner.total > capacity:
        out.append(_learner_fix(cfg, plan, capacity))
    if plan.engine is not None and plan.engine.sequences < 1:
        out.append(
            Problem(
                "rollout.gpus_per_actor",
                f"a vLLM engine on {plan.engine_gpus:g} GPU holds {arch.params * 2 / GIB:.1f} GiB of bf16 weights "
                f"and has room for {plan.engine.kv_tokens:,} KV-cache tokens, fewer than one sequence of "
                f"{plan.workload.max_prompt_tokens + plan.workload.new_tokens:,} (rollout.max_prompt_tokens + "
                "sampling.max_new_tokens): lower those, or use GPUs with more memory",
            )
        )
    out += implementation_problems(cfg, arch)
    return out


def _learner_fix(cfg: TrainConfig, plan: Plan, capacity: int) -> Problem:
    """The first change that makes a learner GPU fit, in the order a practitioner tries them:
    checkpointing, a smaller micro-batch (never below the longest row, which is not cut), more
    ranks to shard over."""
    lc, mem, longest = cfg.learner, plan.learner, plan.tokens.longest_row
    need = f"a learner GPU needs {mem.total / GIB:.1f} GiB of {capacity / GIB:.0f}"
    if not lc.activation_checkpointing:
        return Problem("learner.activation_checkpointing", f"{need}: set learner.activation_checkpointing=true")
    target = FIX_HEADROOM * capacity  # a fix that lands exactly on the limit is no fix
    fits = _tokens_that_fit(cfg, plan.arch, target)
    if lc.micro_batch_tokens > longest and fits >= max(longest, 2048):
        return Problem("learner.micro_batch_tokens", f"{need}: set learner.micro_batch_tokens={fits} or fewer")
    sharded = (mem.weights + mem.gradients + mem.optimizer) * lc.world_size
    fixed = mem.total - mem.weights - mem.gradients - mem.optimizer
    world = math.ceil(sharded / (target - fixed)) if target > fixed else None
    row = f" (its longest row, {longest:,} tokens, is one micro-batch)" if longest >= lc.micro_batch_tokens else ""
    if world:
        return Problem("learner.world_size", f"{need}{row}: set learner.world_size={world} or more")
    return Problem(
        "rollout.sampling.max_new_tokens",
        f"{need}{row}: even one layer's share does not fit; lower rollout.sampling.max_new_tokens or "
        "algorithm.group_size, or use GPUs with more memory",
    )


def _tokens_that_fit(cfg: TrainConfig, arch: Architecture, target: float) -> int:
    """The largest micro-batch (a multiple of 1,024 tokens, at most the configured one) whose
    learner memory stays under `target`; 0 if none."""
    lc = cfg.learner
    for tokens in range(lc.micro_batch_tokens // 1024 * 1024, 0, -1024):
        memory = learner_memory(
            arch,
            lc.world_size,
            tokens,
            gpu=lc.device == "cuda",
            bf16=lc.bf16,
            checkpointing=lc.activation_checkpointing,
            reference=lc.loss.kl_coef > 0,
        )
        if memory.total <= target:
            return tokens
    return 0


def implementation_problems(cfg: TrainConfig, arch: Architecture) -> list[Problem]:
    """The attention and experts implementations the learner will ask transformers for, checked
    against the torch installed here."""
    import torch

    out = []
    lc = cfg.learner
    if arch.experts and lc.device == "cuda" and lc.experts == "grouped_mm":
        if not (hasattr(torch.nn.functional, "grouped_mm") or hasattr(torch, "_grouped_mm")):
            out.append(
                Problem(
                    "learner.experts",
                    f"grouped_mm needs torch >= 2.9 (installed: {torch.__version__}): install the gpu extra, "
                    "or set learner.experts=eager (a per-expert loop, many times slower)",
                )
            )
    if lc.attention == "blocks" and lc.device == "cuda":
        if importlib.util.find_spec("torch.nn.attention.flex_attention") is None:
            out.append(
                Problem(
                    "learner.attention",
                    f"blocks on GPU compiles flex attention, absent from torch {torch.__version__}: install the "
                    "gpu extra, or set learner.attention=sdpa (a dense mask, row length squared)",
                )
            )
    return out


def notes(cfg: TrainConfig, plan: Plan) -> list[str]:
    """What the plan cannot check from here, and choices worth a second look."""
    lc, out = cfg.learner, []
    if lc.device == "cuda" and lc.attention == "blocks" and importlib.util.find_spec("triton") is None:
        out.append("flex attention compiles with triton, which is not installed here: the GPU image must have it")
    if plan.arch.experts and lc.device == "cuda" and lc.experts == "eager":
        out.append("learner.experts=eager: every expert runs in a Python loop (use grouped_mm on SM80+ GPUs)")
    if plan.arch.experts and lc.device == "cuda" and lc.experts == "grouped_mm":
        out.append("grouped_mm needs SM80+ (A100, H100): the learner refuses to start otherwise, never falls back")
    if plan.sim_actors > cfg.sim.max_workers:
        out.append(
            f"a turn's simulations need {plan.sim_actors} actors to finish within seconds and sim.max_workers "
            f"is {cfg.sim.max_workers}: the backbones wait on simulation (raise sim.max_workers)"
        )
    if plan.engine is not None and 0 < plan.engine.sequences < cfg.algorithm.group_size:
        out.append(
            f"one engine holds {plan.engine.sequences} longest sequences at once, fewer than a group "
            f"(G={cfg.algorithm.group_size}): groups at long histories queue for KV cache"
        )
    return out
