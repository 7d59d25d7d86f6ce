"""The replay-free buffer: scored groups in, one Arrow RecordBatch per training batch out.

The batch follows the wire schema (wire/batch.py). A sample is trained on once and dropped.
"""

from __future__ import annotations

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


@dataclass
class Buffer:
    """Collect groups; `take(n)` hands out the first n samples with advantages as Arrow."""

    flat_groups: FlatGroups = "drop"
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
        for sample, per_segment in zip(group.samples, advantages):
            self.rows.append(_row(sample, per_segment, group))

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, n: int) -> pa.RecordBatch:
        rows, self.rows = self.rows[:n], self.rows[n:]
        return pa.RecordBatch.from_pylist(rows, schema=SCHEMA)


def _row(sample: Sample, per_segment: list[float], group: Group) -> dict:
    n = len(sample.ids)
    mask, adv, logp = [False] * n, [0.0] * n, [None] * n
    for seg, a in zip(sample.segments, per_segment):
        for k, i in enumerate(range(seg.start, seg.end)):
            mask[i], adv[i] = True, a
            logp[i] = seg.logprobs[k] if k < len(seg.logprobs) else None
    return {
        "input_ids": sample.ids,
        "loss_mask": mask,
        "advantages": adv,
        "old_logprobs": logp,
        "task": sample.task,
        "query_seed": sample.query_seed,
        "turn": sample.turn,
        "group_id": group.id,
        "reward": sample.segments[0].reward,
        "score": sample.score,
        "format_ok": sample.format_ok,
        "policy_version": sample.policy_version,
        "algorithm": group.algorithm,
    }
