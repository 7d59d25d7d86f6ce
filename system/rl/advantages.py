"""Advantage rules (docs/design.md, "Algorithms"), as pure functions on rewards.

Group-relative: `(r - mean) / (std + eps)` within one group of samples that share a starting
point (a turn's history for TL-GRPO and ST-iter; a query for trajectory-level GRPO). GTPO keeps a
reward per turn, discounts later turns into each turn's return, and normalises returns across the
group at the same turn index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EPS = 1e-6


def group_advantages(rewards: Sequence[float], eps: float = EPS) -> list[float]:
    """Normalised within the group (population std, as GRPO does)."""
    n = len(rewards)
    if n == 0:
        return []
    if is_flat(rewards):  # exactly zero, not float noise divided by eps
        return [0.0] * n
    mean = sum(rewards) / n
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / n)
    return [(r - mean) / (std + eps) for r in rewards]


def discounted_returns(turn_rewards: Sequence[float], gamma: float) -> list[float]:
    """R_t = r_t + gamma * R_{t+1}."""
    out, running = [0.0] * len(turn_rewards), 0.0
    for t in range(len(turn_rewards) - 1, -1, -1):
        running = turn_rewards[t] + gamma * running
        out[t] = running
    return out


def gtpo_advantages(turn_rewards: Sequence[Sequence[float]], gamma: float, eps: float = EPS) -> list[list[float]]:
    """One list of per-turn rewards per trajectory -> per-turn advantages, normalised across the
    trajectories that reached the same turn index."""
    returns = [discounted_returns(r, gamma) for r in turn_rewards]
    out = [[0.0] * len(r) for r in returns]
    for t in range(max((len(r) for r in returns), default=0)):
        members = [i for i, r in enumerate(returns) if t < len(r)]
        for i, a in zip(members, group_advantages([returns[i][t] for i in members], eps)):
            out[i][t] = a
    return out


def is_flat(rewards: Sequence[float], tol: float = 1e-9) -> bool:
    """All rewards equal: the group carries no learning signal."""
    return len(rewards) < 2 or max(rewards) - min(rewards) <= tol
