"""`tlgrpo bench decode`: the HF engine's batched decode with its fixed-length KV cache against
transformers' growing one, on the same prompts in the same run.

Prompts are shaped like a TL-GRPO turn: `groups` histories of `history` tokens, each asked
`rows_per_group` times with a short distinct tail. Greedy sampling, so both caches must give the
same ids (checked); the headline is `static_speedup` = growing-cache time / fixed-cache time.
"""

from __future__ import annotations

import random
import time

from wire.sampling import Sampling


def run_decode_bench(model: str, groups: int, rows_per_group: int, history: int, new_tokens: int, repeat: int) -> dict:
    import torch

    from actors.hf_engine import HFEngine

    engine = HFEngine(model)
    rng = random.Random(0)
    vocab = engine.model.config.vocab_size
    draw = lambda n: [rng.randrange(100, vocab - 100) for _ in range(n)]  # noqa: E731
    bases = [draw(history) for _ in range(groups)]
    prompts = [base + draw(20 + 7 * j) for base in bases for j in range(rows_per_group)]
    sampling = Sampling(max_new_tokens=new_tokens, temperature=0.0)
    times: dict[str, list[float]] = {"dynamic": [], "static": []}
    ids: dict[str, list] = {}
    for _ in range(repeat):
        for kind in times:
            engine.kv_cache = kind
            start = time.perf_counter()
            out = engine.generate_batch(prompts, sampling)
            times[kind].append(time.perf_counter() - start)
            ids[kind] = [g.ids for g in out]
    best = {k: min(v) for k, v in times.items()}
    tokens = sum(len(row) for row in ids["static"])  # a row that samples a stop token ends there
    return {
        "setting": {
            "model": model,
            "rows": len(prompts),
            "history": history,
            "new_tokens": new_tokens,
            "threads": torch.get_num_threads(),
        },
        "dynamic_s": best["dynamic"],
        "static_s": best["static"],
        "dynamic_tok_s": tokens / best["dynamic"],
        "static_tok_s": tokens / best["static"],
        "same_ids": ids["dynamic"] == ids["static"],
        "static_speedup": best["dynamic"] / best["static"],
    }
