"""Micro-batches filled to a token budget, padding-free, with the same count on every rank.

Training rows (a sample, or a group's shared prefix followed by its branches) are packed end to
end into one row per micro-batch (first-fit decreasing by length); attention never crosses a
row, and a branch sees its prefix and itself only (learner/attention.py). FSDP needs every rank
to run the same number of forward passes, so ranks with fewer micro-batches get empty ones;
those run one dummy token that counts as computed, not real.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class MicroBatch:
    rows: tuple[int, ...]  # sample indices in the batch, in packing order
    tokens: int  # real tokens (sum of the rows' lengths)


def plan_micro_batches(lengths: list[int], token_budget: int, world_size: int) -> list[list[MicroBatch]]:
    """Per rank, the same number of micro-batches; tokens balanced across ranks.

    Rows go to ranks first, longest first to the least loaded rank (a shared-prefix group is one
    large row, so balancing bins instead would leave ranks idle), then fill each rank's
    micro-batches first-fit decreasing. A row longer than the budget gets a micro-batch of its
    own (never cut: its action tokens need their whole history)."""
    if token_budget < 1 or world_size < 1:
        raise ValueError("token_budget and world_size must be positive")
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    mine: list[list[int]] = [[] for _ in range(world_size)]
    load = [0] * world_size
    for i in order:
        r = min(range(world_size), key=lambda k: (load[k], len(mine[k])))
        mine[r].append(i)
        load[r] += lengths[i]
    ranks: list[list[MicroBatch]] = []
    for rows in mine:
        bins: list[list[int]] = []
        room: list[int] = []
        for i in rows:  # already longest first
            for b, free in enumerate(room):
                if lengths[i] <= free:
                    bins[b].append(i)
                    room[b] -= lengths[i]
                    break
            else:
                bins.append([i])
                room.append(token_budget - lengths[i])
        ranks.append([MicroBatch(tuple(rows), sum(lengths[i] for i in rows)) for rows in bins])
    per_rank = max(1, max(len(mbs) for mbs in ranks))
    for mbs in ranks:
        mbs.extend(MicroBatch((), 0) for _ in range(per_rank - len(mbs)))
    return ranks


@dataclass(frozen=True)
class Block:
    """One training row inside a packed row: a shared prefix [prefix_start, prefix_end) and the
    branches that follow it, each [start, end), every one attending to the prefix and to itself.
    A row without a shared prefix is one branch after an empty prefix."""

    prefix_start: int
    prefix_end: int
    branches: tuple[tuple[int, int], ...]


@dataclass
class Packed:
    """One packed row: ids, positions, the blocks that say who attends to whom, and for each
    token the index of the token that predicts it."""

    input_ids: torch.Tensor  # [1, L] long
    position_ids: torch.Tensor  # [1, L] long: from 0 in each prefix; a branch continues its prefix
    blocks: tuple[Block, ...]
    predictor: torch.Tensor  # [L] long: the position whose logits predict this token; -1 for none
    real: int  # tokens that belong to rows (L minus the dummy token of an empty micro-batch)
    cache: dict = field(default_factory=dict, repr=False)  # per-row attention masks, built once

    @property
    def length(self) -> int:
        return self.input_ids.shape[1]


def row_bounds(length: int, bounds: list[int] | None) -> list[int]:
    """A row's branch boundaries [prefix_end, end_1, ..., length]; None: one unshared sample."""
    return [0, length] if not bounds else list(bounds)


def pack(rows: list[list[int]], bounds: list[list[int] | None] | None = None) -> Packed:
    """Rows end to end. `bounds[k]` splits row k into a shared prefix and branches
    (`[p, e1, e2, ..., len]`: prefix [0, p), branches [p, e1), [e1, e2), ...)."""
    if not rows:  # an empty micro-batch: one token that the loss never sees
        zero = torch.zeros((1, 1), dtype=torch.long)
        return Packed(zero, zero.clone(), (Block(0, 0, ((0, 1),)),), torch.full((1,), -1), 0)
    bounds = bounds or [None] * len(rows)
    positions, predictor, blocks = [], [], []
    offset = 0
    for row, row_bound in zip(rows, bounds):
        cuts = row_bounds(len(row), row_bound)
        prefix = cuts[0]
        positions.append(torch.arange(prefix))
        predictor.append(torch.arange(offset - 1, offset + prefix - 1))
        branches = []
        for start, end in itertools.pairwise(cuts):
            positions.append(torch.arange(prefix, prefix + end - start))
            first = offset + prefix - 1 if prefix else -1  # a branch's first token follows the prefix
            predictor.append(torch.cat([torch.tensor([first]), torch.arange(offset + start, offset + end - 1)]))
            branches.append((offset + start, offset + end))
        if prefix:
            predictor[-1 - len(branches)][0] = -1  # the prefix's first token has no predictor
        blocks.append(Block(offset, offset + prefix, tuple(branches)))
        offset += len(row)
    ids = torch.tensor([t for r in rows for t in r], dtype=torch.long)
    return Packed(ids[None], torch.cat(positions)[None], tuple(blocks), torch.cat(predictor), len(ids))


def token_owners(packed: Packed) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: the index of its block, and of its branch in the block (-1 in the prefix)."""
    block = torch.zeros(packed.length, dtype=torch.long)
    branch = torch.full((packed.length,), -1, dtype=torch.long)
    for b, blk in enumerate(packed.blocks):
        block[blk.prefix_start : blk.branches[-1][1]] = b
        for k, (start, end) in enumerate(blk.branches):
            branch[start:end] = k
    return block, branch


def dense_mask(packed: Packed) -> torch.Tensor:
    """[1, 1, L, L] bool, the reference form of the blocks: a token attends to earlier tokens of
    its own branch and to its block's prefix. Costs L x L: for checks and small rows."""
    n = packed.length
    mask = torch.zeros((n, n), dtype=torch.bool)
    for block in packed.blocks:
        p0, p1 = block.prefix_start, block.prefix_end
        mask[p0:p1, p0:p1] = torch.ones((p1 - p0, p1 - p0), dtype=torch.bool).tril()
        for start, end in block.branches:
            mask[start:end, p0:p1] = True
            mask[start:end, start:end] = torch.ones((end - start, end - start), dtype=torch.bool).tril()
    return mask[None, None]
