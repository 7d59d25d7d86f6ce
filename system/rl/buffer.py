"""The replay-free buffer: scored groups in, one Arrow RecordBatch per training batch out.

The batch follows the wire schema (wire/batch.py). A sample is trained on once and dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from system.rl.advantages import group_advantages, gtpo_advantages, is_flat
from wire.batch import SCHEMA


@dataclass
class Segment:
    """One action inside a sample's token ids: where it is, its reward, its log-probs."""

    start: int
    end: int
    reward: float
    logprobs: list[float]
    turn: int = 0


@dataclass
class Sample:
    ids: list[int]
    segments: list[Segment]
    task: str
    query_seed: int
    score: float
    format_ok: bool
    policy_version: int
    turn: int = 0


@dataclass
class Group:
    """Samples from one starting point. `per_turn` groups (GTPO) carry a reward per segment;
    the others one reward per sample (the first segment's, shared by all its segments)."""

    id: int
    samples: list[Sample]
    algorithm: str
    per_turn: bool = False
    gamma: float = 0.9

    @property
    def rewards(self) -> list[float]:
        return [s.segments[0].reward for s in self.samples]


FlatGroups = Literal["drop", "keep"]
# Test-only: a learning test shows that it catches a broken loop by training with advantages
# zeroed or of the wrong sign (system/rl/learning.py). Read from the environment, never a config.
BREAKS = {"zero-advantages": 0.0, "flip-advantages": -1.0}


def advantage_scale() -> float:
    value = os.environ.get("TLGRPO_TEST_BREAK", "")
    if value and value not in BREAKS:
        raise ValueError(f"TLGRPO_TEST_BREAK={value!r}: use one of {', '.join(BREAKS)} (or leave it unset)")
    return BREAKS.get(value, 1.0)


@dataclass
class Buffer:
    """Collect groups; `take(n)` hands out the first n training rows with advantages as Arrow.

    With `share_prefixes` a group whose samples begin with the same tokens becomes one row: the
    shared prefix once, then each sample's own tokens (a branch). The prefix is cut before the
    first action token of any member, so it carries no loss, and a causal model computes it the
    same for every member: the learner computes it once (learner/packing.py)."""

    flat_groups: FlatGroups = "drop"
    share_prefixes: bool = True
    rows: list[dict] = field(default_factory=list)
    dropped_groups: int = 0

    def add(self, group: Group) -> None:
        if not group.per_turn and self.flat_groups == "drop" and is_flat(group.rewards):
            self.dropped_groups += 1
            return
        if group.per_turn:
            advantages = gtpo_advantages([[seg.reward for seg in s.segments] for s in group.samples], group.gamma)
        else:
            advantages = [[a] * len(s.segments) for s, a in zip(group.samples, group_advantages(group.rewards))]
        if (scale := advantage_scale()) != 1.0:
            advantages = [[scale * a for a in per_sample] for per_sample in advantages]
        branches = [_branch(sample, per_segment) for sample, per_segment in zip(group.samples, advantages)]
        prefix = shared_prefix(group.samples) if self.share_prefixes and len(group.samples) > 1 else 0
        if prefix:
            self.rows.append(_row(group, group.samples, branches, prefix))
        else:
            self.rows += [_row(group, [s], [b], 0) for s, b in zip(group.samples, branches)]

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, n: int) -> pa.RecordBatch:
        rows, self.rows = self.rows[:n], self.rows[n:]
        return pa.RecordBatch.from_pylist(rows, schema=SCHEMA)


def shared_prefix(samples: list[Sample]) -> int:
    """Leading tokens every sample has, cut before the first action token of any of them."""
    limit = min(min((seg.start for seg in s.segments), default=len(s.ids)) for s in samples)
    first = samples[0].ids
    for k in range(limit):
        if any(s.ids[k] != first[k] for s in samples[1:]):
            return k
    return limit


def _branch(sample: Sample, per_segment: list[float]) -> tuple[list[bool], list[float], list[float | None]]:
    n = len(sample.ids)
    mask, adv, logp = [False] * n, [0.0] * n, [None] * n
    for seg, a in zip(sample.segments, per_segment):
        for k, i in enumerate(range(seg.start, seg.end)):
            mask[i], adv[i] = True, a
            logp[i] = seg.logprobs[k] if k < len(seg.logprobs) else None
    return mask, adv, logp


def _row(group: Group, samples: list[Sample], branches: list[tuple], prefix: int) -> dict:
    """One training row: samples[0]'s first `prefix` tokens, then every sample's tokens after them."""
    ids, mask, adv, logp, bounds = list(samples[0].ids[:prefix]), [False] * prefix, [0.0] * prefix, [None] * prefix, []
    bounds.append(prefix)
    for sample, (m, a, lp) in zip(samples, branches):
        ids += sample.ids[prefix:]
        mask += m[prefix:]
        adv += a[prefix:]
        logp += lp[prefix:]
        bounds.append(len(ids))
    return {
        "input_ids": ids,
        "loss_mask": mask,
        "advantages": adv,
        "old_logprobs": logp,
        "bounds": bounds,
        "task": samples[0].task,
        "query_seed": samples[0].query_seed,
        "group_id": group.id,
        "algorithm": group.algorithm,
        "turn": [s.turn for s in samples],
        "reward": [s.segments[0].reward for s in samples],
        "score": [s.score for s in samples],
        "format_ok": [s.format_ok for s in samples],
        "policy_version": [s.policy_version for s in samples],
    }
