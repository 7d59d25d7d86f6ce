"""The learner's peak memory for one update, measured on CPU: what `tlgrpo plan`'s activation
arithmetic is held to. Run in a fresh process (peak RSS is per process):

    python -m system.plan.measure HIDDEN LAYERS TOKENS [--checkpointing]

prints {"peak_extra": bytes, "planned": bytes, "planned_over_measured": ratio}. peak_extra is
the resident-memory high-water mark of one forward, backward and AdamW step on a row of TOKENS
tokens of the tiny architecture, above the resident memory just before it. A warm-up step on 128
tokens has already allocated weights, gradients and optimiser state; free heap memory is handed
back to the kernel (malloc_trim) and the high-water mark reset (/proc/self/clear_refs), so
neither the imports' transient peak nor memory that the allocator kept from the warm-up hides
part of the step's. planned is what `tlgrpo plan`'s arithmetic says for the same update.
docs/measured/cpu-plan-measure.json keeps the figures docs/scaling.md quotes."""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import re
from pathlib import Path


def _status(key: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE).group(1)) * 1024


def peak_extra(hidden: int, layers: int, tokens: int, checkpointing: bool) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    from learner.attention import register
    from learner.forward import packed_logprobs
    from learner.packing import pack
    from system.models.tiny import TINY_VOCAB, tiny_config

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(TINY_VOCAB, hidden, layers), attn_implementation=register())
    if checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, foreach=False)

    def step(n: int) -> None:
        packed = pack([torch.randint(0, TINY_VOCAB, (n,)).tolist()], [None])
        logprobs, _ = packed_logprobs(model, packed, torch.device("cpu"), "blocks")
        logprobs.sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(128)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS (Linux >= 4.0)
    before = _status("VmRSS")
    step(tokens)
    return _status("VmHWM") - before


def planned_extra(args, measured: int) -> dict:
    """What `tlgrpo plan`'s arithmetic says for the same update (activations and working set)."""
    from system.config import load_config
    from system.plan.architecture import load_architecture
    from system.plan.arithmetic import learner_memory

    cfg = load_config("tiny-cpu", [f"model.tiny.hidden={args.hidden}", f"model.tiny.layers={args.layers}"])
    memory = learner_memory(
        load_architecture(cfg), 1, args.tokens, gpu=False, bf16=False, checkpointing=args.checkpointing, reference=False
    )
    planned = memory.activations + memory.working
    return {"planned": planned, "planned_over_measured": round(planned / measured, 3)}


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(prog="python -m system.plan.measure")
    parser.add_argument("hidden", type=int)
    parser.add_argument("layers", type=int)
    parser.add_argument("tokens", type=int)
    parser.add_argument("--checkpointing", action="store_true")
    args = parser.parse_args()
    measured = peak_extra(args.hidden, args.layers, args.tokens, args.checkpointing)
    print(json.dumps({**vars(args), "peak_extra": measured, **planned_extra(args, measured)}))
