"""Micro-batches filled to a token budget, padding-free, with the same count on every rank.

Samples are packed end to end into one row per micro-batch (first-fit decreasing by length);
attention never crosses a sample boundary (a block-diagonal mask, or position ids under flash
attention). FSDP needs every rank to run the same number of forward passes, so ranks with fewer
micro-batches get empty ones; those run one dummy token that counts as computed, not real.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MicroBatch:
    rows: tuple[int, ...]  # sample indices in the batch, in packing order
    tokens: int  # real tokens (sum of the rows' lengths)


def plan_micro_batches(lengths: list[int], token_budget: int, world_size: int) -> list[list[MicroBatch]]:
    """Per rank, the same number of micro-batches; tokens balanced across ranks.

    A sample longer than the budget gets a micro-batch of its own (never cut: its action tokens
    need their whole history)."""
    if token_budget < 1 or world_size < 1:
        raise ValueError("token_budget and world_size must be positive")
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(token_budget - lengths[i])
    per_rank = max(1, -(-len(bins) // world_size))
    ranks: list[list[MicroBatch]] = [[] for _ in range(world_size)]
    load = [0] * world_size
    for rows in sorted(bins, key=lambda r: -sum(lengths[i] for i in r)):
        open_ranks = [r for r in range(world_size) if len(ranks[r]) < per_rank]
        r = min(open_ranks, key=lambda k: load[k])
        tokens = sum(lengths[i] for i in rows)
        ranks[r].append(MicroBatch(tuple(rows), tokens))
        load[r] += tokens
    for mbs in ranks:
        mbs.extend(MicroBatch((), 0) for _ in range(per_rank - len(mbs)))
    return ranks


@dataclass
class Packed:
    """One packed row: ids, positions, and per-token fields of the samples it holds."""

    input_ids: torch.Tensor  # [1, L] long
    position_ids: torch.Tensor  # [1, L] long, restarting at 0 for each sample
    segment: torch.Tensor  # [L] long, which sample of the row each token belongs to
    real: int  # tokens that belong to samples (L minus the dummy token of an empty micro-batch)


def pack(rows: list[list[int]]) -> Packed:
    if not rows:  # an empty micro-batch: one token that the loss never sees
        return Packed(
            torch.zeros((1, 1), dtype=torch.long),
            torch.zeros((1, 1), dtype=torch.long),
            torch.zeros(1, dtype=torch.long),
            0,
        )
    ids = torch.tensor([t for r in rows for t in r], dtype=torch.long)
    positions = torch.cat([torch.arange(len(r)) for r in rows])
    segment = torch.cat([torch.full((len(r),), k, dtype=torch.long) for k, r in enumerate(rows)])
    return Packed(ids[None], positions[None], segment, len(ids))


def block_causal_mask(segment: torch.Tensor) -> torch.Tensor:
    """[1, 1, L, L] bool: a token attends to earlier tokens of its own sample only."""
    n = segment.shape[0]
    causal = torch.ones((n, n), dtype=torch.bool).tril()
    return (causal & (segment[:, None] == segment[None, :]))[None, None]
