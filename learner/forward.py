"""Per-token log-probs and entropy of a packed row under the current weights."""

from __future__ import annotations

import torch

from learner.packing import Packed, block_causal_mask


def packed_logprobs(
    model: torch.nn.Module, packed: Packed, device: torch.device, flash: bool, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs [L], entropy [L]): position t holds log p(token t | tokens before it in its
    sample); position 0 of each sample has no prediction and holds 0 (it is never an action).

    Logits are divided by the sampling temperature, so that the learner scores tokens under the
    distribution the engine sampled from. Entropy carries no gradient."""
    kwargs = {"position_ids": packed.position_ids.to(device)}
    one_sample = bool((packed.segment == packed.segment[0]).all())
    if not flash and not one_sample:  # flash attention separates samples by their position ids alone
        kwargs["attention_mask"] = block_causal_mask(packed.segment).to(device)
    logits = model(packed.input_ids.to(device), **kwargs).logits[0, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    targets = packed.input_ids[0, 1:].to(device)
    picked = logp_all.gather(1, targets[:, None])[:, 0]
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    zero = torch.zeros(1, device=device)
    return torch.cat([zero, picked]), torch.cat([zero, entropy])
