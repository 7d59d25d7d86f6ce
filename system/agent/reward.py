"""The unified turn score (docs/design.md, "Reward"): per-spec scores and their geometric mean.
The training reward (the score minus the format penalty) is taken in system/agent/turns.py.

Per spec, `d` is the normalised shortfall; `f(d)` is 1 when met, a quadratic down to 1-c at
alpha, a cubic Hermite segment down to 0 at beta (value and slope matched at both ends), and 0
beyond. A turn's score is the geometric mean of the per-spec scores, the same scale on every task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from simworkers.result import SimResult
from simworkers.task import Spec


def shortfall(spec: Spec, value: float) -> float:
    """How far `value` is outside the spec, normalised; <= 0 when met, inf when not a number."""
    if not math.isfinite(value):
        return math.inf
    if spec.log:
        if value <= 0:
            return math.inf
        below = math.log(spec.lo / value) if spec.lo is not None else -math.inf
        above = math.log(value / spec.hi) if spec.hi is not None else -math.inf
        return max(below, above)
    if spec.scale is not None:
        scale = spec.scale
    elif spec.kind == "range":
        scale = spec.hi - spec.lo
    else:
        scale = abs(spec.lo if spec.kind == "min" else spec.hi)
    below = (spec.lo - value) if spec.lo is not None else -math.inf
    above = (value - spec.hi) if spec.hi is not None else -math.inf
    return max(below, above) / scale


def spec_score(d: float, alpha: float = 0.05, beta: float = 0.5, c: float = 0.1) -> float:
    """f(d): 1 for d <= 0, C1-continuous, non-increasing, 0 for d >= beta."""
    if d <= 0:
        return 1.0
    if d <= alpha:
        return 1.0 - c * (d / alpha) ** 2
    if d >= beta:
        return 0.0
    # Cubic Hermite from (alpha, 1-c, slope -2c/alpha) to (beta, 0, slope 0).
    h = beta - alpha
    t = (d - alpha) / h
    y0, m0 = 1.0 - c, -2.0 * c / alpha * h  # slope scaled to the unit interval
    h00 = 2 * t**3 - 3 * t**2 + 1
    h10 = t**3 - 2 * t**2 + t
    return min(1.0, max(0.0, h00 * y0 + h10 * m0))


@dataclass(frozen=True)
class SpecOutcome:
    spec: Spec
    value: float | None
    shortfall: float
    score: float

    @property
    def met(self) -> bool:
        return self.shortfall <= 0


@dataclass(frozen=True)
class Score:
    """The score of one simulated design against one set of specs."""

    value: float
    outcomes: tuple[SpecOutcome, ...]


def score_metrics(specs: tuple[Spec, ...], metrics: Mapping[str, float]) -> Score:
    outcomes = []
    for spec in specs:
        value = metrics.get(spec.metric)
        d = math.inf if value is None else shortfall(spec, value)
        outcomes.append(SpecOutcome(spec, value, d, spec_score(d, spec.alpha, spec.beta, spec.c)))
    scores = [o.score for o in outcomes]
    if any(s <= 0 for s in scores):
        return Score(0.0, tuple(outcomes))
    return Score(math.exp(sum(math.log(s) for s in scores) / len(scores)), tuple(outcomes))


def score_result(specs: tuple[Spec, ...], result: SimResult) -> Score:
    """Geometric mean of the per-spec scores; 0 for any result that is not `ok`."""
    score = score_metrics(specs, result.metrics)
    return score if result.ok else Score(0.0, score.outcomes)
