"""The learner's peak memory for one update, measured on CPU: what `tlgrpo plan`'s activation
arithmetic is held to. Run in a fresh process (peak RSS is per process):

    python -m system.plan.measure HIDDEN LAYERS TOKENS [--checkpointing]

prints {"peak_extra": bytes}: the resident-memory high-water mark of one forward, backward and
AdamW step on a row of TOKENS tokens of the tiny architecture, above that of a warm-up step on 128
tokens (which has already allocated weights, gradients and optimiser state)."""

from __future__ import annotations

import argparse
import json
import resource


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
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step(tokens)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # Linux reports KiB


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(prog="python -m system.plan.measure")
    parser.add_argument("hidden", type=int)
    parser.add_argument("layers", type=int)
    parser.add_argument("tokens", type=int)
    parser.add_argument("--checkpointing", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"peak_extra": peak_extra(args.hidden, args.layers, args.tokens, args.checkpointing)}))
