"""The learner's attention: each packed block costs the tokens it attends, never the row squared.

Registered with transformers as the attention implementation `tlgrpo_blocks`, so every model the
learner trains uses it; it chooses by device:
- elsewhere than on GPU (`sdpa_blocks`): for each block of a packed row (learner/packing.py), one
  causal SDPA call on the shared prefix, then one call per branch whose queries attend the
  prefix's keys and values followed by the branch's own (a [branch, prefix + branch] mask: full
  over the prefix, causal over the branch). Flex attention has no CPU backward in torch 2.13.
- on GPU (`flex_blocks`): compiled flex attention over the whole row with a block mask built
  from the same blocks, which skips the tiles no token attends. Checked against the CPU path in
  the forward pass; its GPU speed is not measured yet.
The dense [L, L] block mask, which costs L squared, stays available as the reference
(`learner.attention: sdpa`).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from learner.packing import Packed, token_owners

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
    """Chosen by device: flex attention with a block mask on GPU, SDPA per block elsewhere."""
    if packed is None:  # a call without blocks (the dense reference mask, or generation): plain SDPA
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout)
    attend = flex_blocks if query.is_cuda else sdpa_blocks
    return attend(query, key, value, packed, scaling, dropout).transpose(1, 2).contiguous(), None


def sdpa_blocks(query, key, value, packed: Packed, scaling: float | None, dropout: float = 0.0) -> torch.Tensor:
    """[1, heads, L, dim]: one causal SDPA call per prefix, one per branch over prefix + itself."""
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
    return torch.cat(pieces, dim=2)


def flex_blocks(query, key, value, packed: Packed, scaling: float | None, dropout: float = 0.0) -> torch.Tensor:
    """[1, heads, L, dim]: flex attention over the whole row with a block mask (same block, not
    later, and in the prefix or the same branch); the mask is built once per packed row.
    Compiled on GPU; eager elsewhere, where it serves only as a check (no CPU backward)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    if dropout:
        raise ValueError("block attention with flex takes no dropout")
    key_ = ("flex", query.device)
    if key_ not in packed.cache:
        block, branch = (t.to(query.device) for t in token_owners(packed))

        def visible(b, h, q, kv):
            return (kv <= q) & (block[q] == block[kv]) & ((branch[kv] < 0) | (branch[kv] == branch[q]))

        n = packed.length
        packed.cache[key_] = create_block_mask(visible, None, None, n, n, device=query.device)
    run = _compiled_flex() if query.is_cuda else flex_attention
    return run(
        query, key, value, block_mask=packed.cache[key_], scale=scaling, enable_gqa=query.shape[1] != key.shape[1]
    )


@functools.cache
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=True)


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
