"""`tlgrpo bench learner`: what the learner's machinery costs over the bare math.

In one run, on the same learner group, the same batch and the same micro-batches: the training
step (policy loss, metrics, entropy, clipping) against a bare forward + backward + AdamW step
with next-token cross-entropy. Headlines: `learner_efficiency` = bare time / train-step time,
`packing_efficiency` = real tokens / computed tokens, and the weight broadcast's seconds per GB
(publish once through the object store, load into a rollout actor).
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


def run_learner_bench(
    model: str | None, world_size: int, samples: int, steps: int, micro_batch_tokens: int, device: str = "cpu"
) -> dict:
    import ray
    from transformers import AutoConfig

    from actors.rollout import RolloutActor
    from learner.group import LearnerGroup
    from system.models.tiny import build_tiny_model

    path = model or str(build_tiny_model(tempfile.mkdtemp(prefix="bench-learner-")))
    vocab = AutoConfig.from_pretrained(path).vocab_size
    init_ray()
    cfg = LearnerConfig(world_size=world_size, device=device, micro_batch_tokens=micro_batch_tokens, lr=1e-5)
    group = LearnerGroup(cfg, path)
    try:
        batches = [rollout_like_batch(samples, vocab, seed=s) for s in range(steps + 1)]
        group.train_step(batches[-1], 0, steps)  # warm-up, both paths share it
        group.bare_step(batches[-1])
        train_s = bare_s = 0.0
        real = computed = 0
        for k in range(steps):  # interleaved, so drift on the machine hits both alike
            t = time.perf_counter()
            metrics = group.train_step(batches[k], k, steps)
            train_s += time.perf_counter() - t
            real += metrics["real_tokens"]
            computed += metrics["computed_tokens"]
            t = time.perf_counter()
            group.bare_step(batches[k])
            bare_s += time.perf_counter() - t
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
    return {
        "setting": {
            "model": model or "tiny (Qwen3 architecture, hidden 128, 2 layers)",
            "parameters": group.parameters,
            "world_size": world_size,
            "device": device,
            "samples_per_step": samples,
            "steps": steps,
            "micro_batch_tokens": micro_batch_tokens,
        },
        "train_step_s": train_s / steps,
        "bare_step_s": bare_s / steps,
        "tokens_per_s": real / train_s,
        "bare_tokens_per_s": real / bare_s,
        "learner_efficiency": bare_s / train_s,
        "packing_efficiency": real / max(1, computed),
        "weight_sync_s": sync_s,
        "weights_gb": gb,
        "weight_sync_s_per_gb": sync_s / max(gb, 1e-12),
    }
