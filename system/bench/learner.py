"""`tlgrpo bench learner`: what the learner costs against baselines measured in the same run.

- `learner_efficiency`: a bare forward + backward + AdamW step with next-token cross-entropy on
  the same batch and micro-batches, over the training step (policy loss, metrics, entropy).
- `mfu`: training FLOPs per token x tokens/s over this machine's matmul peak, probed here.
- `block_attention_speedup`: the same steps with the dense [L, L] block mask, over block attention.
- `shared_prefix_speedup`: TL-GRPO turn groups with every history sent G times, over the same
  groups with each history once; `shared_prefix_speedup_theory` = (G x h + sum a) / (h + sum a).
- the weight broadcast's seconds per GB (publish once through the object store, load into a
  rollout actor); `packing_efficiency` = real tokens / computed tokens.
"""

from __future__ import annotations

import random
import tempfile
import time

from learner.config import LearnerConfig
from system.rl.buffer import Buffer, Group, Sample, Segment
from system.runtime import init_ray


def rollout_like_batch(samples: int, vocab: int, seed: int = 0, prompt=(1200, 2200), action=(40, 200)):
    """Histories and actions with the spread of lengths a TL-GRPO step produces."""
    rng = random.Random(seed)
    buffer = Buffer(flat_groups="keep")
    for g in range(0, samples, 4):
        members = []
        for _ in range(min(4, samples - g)):
            n, a = rng.randrange(*prompt), rng.randrange(*action)
            ids = [rng.randrange(3, vocab) for _ in range(n + a)]
            members.append(Sample(ids, [Segment(n, n + a, rng.random(), [-1.0] * a, 1)], "t", 0, 0.0, True, 0, 1))
        buffer.add(Group(g, members, "tl_grpo"))
    return buffer.take(len(buffer))


def turn_group_batch(groups: int, vocab: int, history: int, action: int, group_size: int, share: bool, seed: int = 0):
    """TL-GRPO-shaped turn groups: one history, `group_size` actions of about `action` tokens each;
    with `share` the buffer keeps each history once."""
    rng = random.Random(seed)
    buffer = Buffer(flat_groups="keep", share_prefixes=share)
    for g in range(groups):
        past = [rng.randrange(3, vocab) for _ in range(history)]
        members = []
        for k in range(group_size):
            a = action + rng.randrange(-action // 4, action // 4 + 1)
            ids = past + [3 + k] + [rng.randrange(3, vocab) for _ in range(a - 1)]
            members.append(
                Sample(ids, [Segment(history, history + a, rng.random(), [-1.0] * a, 1)], "t", 0, 0.0, True, 0, 1)
            )
        buffer.add(Group(g, members, "tl_grpo"))
    return buffer.take(len(buffer))


def matmul_peak(device: str, threads: int, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a square matmul on this machine (fp32 on CPU with `threads` threads, bf16 on GPU):
    the roof that MFU is measured against."""
    import torch

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            a @ b
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        return 2 * n**3 / best
    finally:
        torch.set_num_threads(before)


def flops_per_token(config, context: float) -> float:
    """Training FLOPs per token: 6 x the matmul parameters (the layers and the output head; the
    embedding lookup is no matmul) plus attention's 12 x layers x hidden x attended context."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, getattr(config, "num_key_value_heads", config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    attn = hidden * head_dim * (2 * heads + 2 * kv)
    mlp = 3 * hidden * config.intermediate_size
    matmul_params = layers * (attn + mlp) + hidden * config.vocab_size
    return 6 * matmul_params + 12 * layers * heads * head_dim * context


def _timed(group, batches: list, steps: int, bare: bool = False) -> dict:
    """Train steps (and bare steps) interleaved over the same batches, after one warm-up each."""
    group.train_step(batches[-1], 0, steps)
    if bare:
        group.bare_step(batches[-1])
    out = {"train_s": 0.0, "bare_s": 0.0, "real": 0, "computed": 0}
    for k in range(steps):  # interleaved, so drift on the machine hits both alike
        t = time.perf_counter()
        metrics = group.train_step(batches[k], k, steps)
        out["train_s"] += time.perf_counter() - t
        out["real"] += metrics["real_tokens"]
        out["computed"] += metrics["computed_tokens"]
        if bare:
            t = time.perf_counter()
            group.bare_step(batches[k])
            out["bare_s"] += time.perf_counter() - t
    return out


def run_learner_bench(
    model: str | None,
    world_size: int,
    samples: int,
    steps: int,
    micro_batch_tokens: int,
    device: str = "cpu",
    dense_baseline: bool = True,
    shared_groups: int = 8,
) -> dict:
    """`shared_groups`: TL-GRPO turn groups in the shared-prefix comparison (0 skips it, for a
    model too slow to train that many tokens here)."""
    import ray
    from transformers import AutoConfig

    from actors.rollout import RolloutActor
    from learner.group import LearnerGroup
    from system.models.tiny import build_tiny_model

    path = model or str(build_tiny_model(tempfile.mkdtemp(prefix="bench-learner-")))
    config = AutoConfig.from_pretrained(path)
    vocab = config.vocab_size
    init_ray()
    cfg = LearnerConfig(world_size=world_size, device=device, micro_batch_tokens=micro_batch_tokens, lr=1e-5)
    batches = [rollout_like_batch(samples, vocab, seed=s) for s in range(steps + 1)]
    shape = {"groups": shared_groups, "history": 2000, "action": 150, "group_size": 4}
    shared = [turn_group_batch(**shape, vocab=vocab, share=True, seed=s) for s in range(steps + 1)]
    unshared = [turn_group_batch(**shape, vocab=vocab, share=False, seed=s) for s in range(steps + 1)]
    with_prefix = without_prefix = None
    group = LearnerGroup(cfg, path)
    try:
        main = _timed(group, batches, steps, bare=True)
        if shared_groups:
            with_prefix = _timed(group, shared, steps)
            without_prefix = _timed(group, unshared, steps)
        actor = ray.remote(num_cpus=0)(RolloutActor).remote(path, 0.005, 8, 1)
        ray.get(actor.version.remote())
        t = time.perf_counter()
        ref = group.publish_weights()
        ray.get(actor.update_weights.remote(1, ref))
        sync_s = time.perf_counter() - t
        state = ray.get(ref)
        gb = sum(v.numel() * v.element_size() for v in state.values()) / 1e9
        ray.kill(actor)
    finally:
        group.shutdown()
    dense = None
    if dense_baseline:
        reference = LearnerGroup(cfg.model_copy(update={"attention": "sdpa"}), path)
        try:
            dense = _timed(reference, batches, steps)
        finally:
            reference.shutdown()
    peak = matmul_peak(device, world_size * cfg.threads_per_rank)
    lengths = [len(ids) for ids in batches[0].column("input_ids").to_pylist()]
    per_token = flops_per_token(config, context=sum(n * n / 2 for n in lengths) / sum(lengths))
    tokens_per_s = main["real"] / main["train_s"]
    h, g, a = shape["history"], shape["group_size"], shape["action"]
    return {
        "setting": {
            "model": model or "tiny (Qwen3 architecture, hidden 128, 2 layers)",
            "parameters": group.parameters,
            "world_size": world_size,
            "threads_per_rank": cfg.threads_per_rank,
            "device": device,
            "attention": cfg.attention,
            "samples_per_step": samples,
            "steps": steps,
            "micro_batch_tokens": micro_batch_tokens,
            "shared_prefix_batch": shape,
        },
        "train_step_s": main["train_s"] / steps,
        "bare_step_s": main["bare_s"] / steps,
        "tokens_per_s": tokens_per_s,
        "bare_tokens_per_s": main["real"] / main["bare_s"],
        "learner_efficiency": main["bare_s"] / main["train_s"],
        "packing_efficiency": main["real"] / max(1, main["computed"]),
        "flops_per_token": per_token,
        "matmul_peak_flops": peak,
        "mfu": per_token * tokens_per_s / peak,
        "dense_mask_tokens_per_s": dense["real"] / dense["train_s"] if dense else None,
        "block_attention_speedup": dense["train_s"] / main["train_s"] if dense else None,
        "shared_prefix_step_s": with_prefix["train_s"] / steps if with_prefix else None,
        "unshared_prefix_step_s": without_prefix["train_s"] / steps if without_prefix else None,
        "shared_prefix_speedup": without_prefix["train_s"] / with_prefix["train_s"] if with_prefix else None,
        "shared_prefix_speedup_theory": (g * h + g * a) / (h + g * a) if with_prefix else None,
        "weight_sync_s": sync_s,
        "weights_gb": gb,
        "weight_sync_s_per_gb": sync_s / max(gb, 1e-12),
    }
