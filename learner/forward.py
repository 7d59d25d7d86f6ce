"""Per-token log-probs and entropy of a packed row under the current weights."""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from learner.packing import Packed, dense_mask

LOGPROB_CHUNK = 2048  # tokens per chunk: logits never exceed chunk x vocab, whatever the row's length


def packed_logprobs(
    model: torch.nn.Module, packed: Packed, device: torch.device, attention: str, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs [L], entropy [L]): position t holds log p(token t | what it follows in its
    branch: the branch's earlier tokens and its prefix); a token with no predictor (the first of
    a row) holds 0, and is never an action.

    `attention`: "blocks" (learner/attention.py, what each block attends) or "sdpa" (the dense
    [L, L] mask, the reference). Logits are divided by the sampling temperature, so that the
    learner scores tokens under the distribution the engine sampled from. Entropy carries no
    gradient.

    The model's own head would make [L, vocab] logits at once: the head runs on one position, and
    the log-probs come from the final hidden states a chunk at a time, each chunk recomputed in
    the backward pass, so that no more than chunk x vocab logits are ever alive."""
    kwargs = {"position_ids": packed.position_ids.to(device)}
    if attention == "blocks":
        kwargs["packed"] = packed
    elif len(packed.blocks) > 1 or packed.blocks[0].prefix_end > packed.blocks[0].prefix_start:
        kwargs["attention_mask"] = dense_mask(packed).to(device)
    last = torch.tensor([packed.length - 1], device=device)
    out = model(packed.input_ids.to(device), **kwargs, logits_to_keep=last, output_hidden_states=True)
    hidden = out.hidden_states[-1][0]
    head = model.get_output_embeddings()
    source = packed.predictor.clamp(min=0).to(device)
    targets = packed.input_ids[0].to(device)
    picked, entropy = [], []
    for lo in range(0, packed.length, LOGPROB_CHUNK):
        args = (hidden[source[lo : lo + LOGPROB_CHUNK]], head.weight, head.bias, targets[lo : lo + LOGPROB_CHUNK])
        if torch.is_grad_enabled():
            p, e = checkpoint(_chunk_logprobs, *args, temperature, use_reentrant=False)
        else:
            p, e = _chunk_logprobs(*args, temperature)
        picked.append(p)
        entropy.append(e)
    has_predictor = (packed.predictor >= 0).to(device)
    zero = torch.zeros((), device=device)
    return torch.where(has_predictor, torch.cat(picked), zero), torch.where(has_predictor, torch.cat(entropy), zero)


def _chunk_logprobs(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.nn.functional.linear(hidden, weight, bias).float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    with torch.no_grad():
        entropy = -(logp.exp() * logp).sum(-1)
    return logp.gather(1, targets[:, None])[:, 0], entropy
