"""The learner's attention: each packed block costs the tokens it attends, never the row squared.

Registered with transformers as the attention implementation `tlgrpo_blocks`, so every model the
learner trains uses it. For each block of a packed row (learner/packing.py): one causal SDPA call
on the shared prefix, then one call per branch whose queries attend the prefix's keys and values
followed by the branch's own (a [branch, prefix + branch] mask: full over the prefix, causal over
the branch). Without a prefix a branch is one causal call. The dense [L, L] block mask, which
costs L squared, stays available as the reference (`learner.attention: sdpa`).

On CPU this is the fast path (flex attention has no CPU backward in torch 2.13). On GPU the same
calls run through SDPA; their speed there is not measured yet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from learner.packing import Packed

NAME = "tlgrpo_blocks"


def block_attention(
    module: torch.nn.Module,
    query: torch.Tensor,  # [1, heads, L, dim]
    key: torch.Tensor,  # [1, kv_heads, L, dim]
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    packed: Packed | None = None,
    **_,
) -> tuple[torch.Tensor, None]:
    if packed is None:  # a call without blocks (the dense reference mask, or generation): plain SDPA
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout)
    gqa = query.shape[1] != key.shape[1]

    def attend(q, k, v, mask=None, causal=False):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, scale=scaling, dropout_p=dropout, enable_gqa=gqa
        )

    pieces = []
    for block in packed.blocks:
        p0, p1 = block.prefix_start, block.prefix_end
        if p1 > p0:
            pieces.append(attend(query[:, :, p0:p1], key[:, :, p0:p1], value[:, :, p0:p1], causal=True))
        for start, end in block.branches:
            q = query[:, :, start:end]
            if p1 == p0:
                pieces.append(attend(q, key[:, :, start:end], value[:, :, start:end], causal=True))
                continue
            n = end - start
            k = torch.cat([key[:, :, p0:p1], key[:, :, start:end]], dim=2)
            v = torch.cat([value[:, :, p0:p1], value[:, :, start:end]], dim=2)
            mask = torch.ones((n, p1 - p0 + n), dtype=torch.bool, device=query.device)
            mask[:, p1 - p0 :] = torch.ones((n, n), dtype=torch.bool, device=query.device).tril()
            pieces.append(attend(q, k, v, mask=mask))
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def _no_mask(*_, **__) -> None:
    """The model builds no mask (over packed positions it would be L x L): the blocks say who
    attends to whom; a dense reference mask is passed in ready-made; otherwise SDPA is causal."""
    return None


def register() -> str:
    """Make `tlgrpo_blocks` an attention implementation transformers models can load with."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(NAME, block_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, _no_mask)
    return NAME
