"""The learning rate as a pure function of the step: nothing to checkpoint, nothing to drift."""

from __future__ import annotations

import math

from learner.config import LearnerConfig


def lr_at(step: int, total_steps: int, cfg: LearnerConfig) -> float:
    """Linear warm-up over `warmup_steps`, then constant or cosine down to `min_lr_ratio * lr`."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
