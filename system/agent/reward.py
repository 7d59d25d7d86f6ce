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

import numpy as np

from simworkers.result import SimResult
from simworkers.task import Spec, shortfall

__all__ = ["Score", "SpecOutcome", "score_metrics", "score_result", "score_table", "shortfall", "spec_score"]


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


def score_table(queries: list[tuple[Spec, ...]], designs: list[Mapping[str, float] | None]) -> np.ndarray:
    """Scores of many designs' metrics (None: did not simulate, scores 0) against many queries'
    specs at once: an array [design, query], equal to `score_metrics` cell by cell. The queries
    share one task's spec order and tolerances; only their targets differ. This is how the
    `constant` baseline weighs hundreds of candidates against hundreds of queries."""
    if not queries or not designs:
        return np.zeros((len(designs), len(queries)))
    log_sum = np.zeros((len(designs), len(queries)))
    dead = np.zeros((len(designs), len(queries)), dtype=bool)
    for j, spec in enumerate(queries[0]):
        values = np.array([m.get(spec.metric, np.nan) if m is not None else np.nan for m in designs], dtype=float)
        lo = np.array([q[j].lo if q[j].lo is not None else np.nan for q in queries], dtype=float)
        hi = np.array([q[j].hi if q[j].hi is not None else np.nan for q in queries], dtype=float)
        d = _shortfalls(spec, values[:, None], lo[None, :], hi[None, :])
        f = _spec_scores(d, spec.alpha, spec.beta, spec.c)
        dead |= f <= 0
        log_sum += np.log(np.where(f > 0, f, 1.0))
    return np.where(dead, 0.0, np.exp(log_sum / len(queries[0])))


def _shortfalls(spec: Spec, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """`shortfall` on arrays; nan bounds are absent ones, a non-finite value is inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if spec.log:
            below = np.where(np.isnan(lo), -np.inf, np.log(lo / v))
            above = np.where(np.isnan(hi), -np.inf, np.log(v / hi))
            d = np.maximum(below, above)
            d = np.where(v > 0, d, np.inf)
        else:
            if spec.scale is not None:
                scale = np.full(np.broadcast(lo, hi).shape, spec.scale)
            elif spec.kind == "range":
                scale = hi - lo
            else:
                scale = np.abs(lo if spec.kind == "min" else hi)
            below = np.where(np.isnan(lo), -np.inf, lo - v)
            above = np.where(np.isnan(hi), -np.inf, v - hi)
            d = np.maximum(below, above) / scale
    return np.where(np.isfinite(v), d, np.inf)


def _spec_scores(d: np.ndarray, alpha: float, beta: float, c: float) -> np.ndarray:
    """`spec_score` on an array."""
    h = beta - alpha
    t = np.clip((d - alpha) / h, 0.0, 1.0)
    y0, m0 = 1.0 - c, -2.0 * c / alpha * h
    cubic = np.clip((2 * t**3 - 3 * t**2 + 1) * y0 + (t**3 - 2 * t**2 + t) * m0, 0.0, 1.0)
    quadratic = 1.0 - c * (np.clip(d, 0.0, alpha) / alpha) ** 2
    return np.where(d <= 0, 1.0, np.where(d <= alpha, quadratic, np.where(d >= beta, 0.0, cubic)))
