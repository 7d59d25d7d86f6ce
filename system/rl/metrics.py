"""What one rollout produced, as step metrics: rewards, scores, format errors, lengths, staleness."""

from __future__ import annotations

import statistics
from collections import defaultdict

from system.rl.buffer import Group


def best_so_far_metrics(curves: list[list[float]], budget: int) -> dict[str, float]:
    """The history-best per turn: the mean over trajectories of the best score after turn t
    (turn 0: the initial design); a trajectory that ended early keeps its last best."""
    if not curves:
        return {}
    out = {}
    for turn in range(budget + 1):
        out[f"best_so_far/turn_{turn}"] = statistics.fmean(c[min(turn, len(c) - 1)] for c in curves)
    return out


def rollout_metrics(groups: list[Group], learner_version: int) -> dict[str, float]:
    samples = [s for g in groups for s in g.samples]
    if not samples:
        return {}
    rewards = [seg.reward for s in samples for seg in s.segments]
    lengths = [seg.end - seg.start for s in samples for seg in s.segments]
    out = {
        "reward/mean": statistics.fmean(rewards),
        "reward/max": max(rewards),
        "score/mean": statistics.fmean(s.score for s in samples),
        "score/best": max(s.score for s in samples),
        "format_error_rate": sum(not s.format_ok for s in samples) / len(samples),
        "response_length/mean": statistics.fmean(lengths),
        "response_length/max": max(lengths),
        "samples": len(samples),
        "groups": len(groups),
        "staleness/mean": statistics.fmean(learner_version - s.policy_version for s in samples),
        "staleness/max": max(learner_version - s.policy_version for s in samples),
    }
    by_turn: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        for seg in s.segments:
            by_turn[seg.turn].append(seg.reward)
    for turn, values in sorted(by_turn.items()):
        out[f"reward/turn_{turn}"] = statistics.fmean(values)
    return out
