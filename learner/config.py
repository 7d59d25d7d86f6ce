"""The learner's settings: one dataclass, validated at the config boundary (system/config.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from learner.loss import LossConfig


@dataclass(frozen=True)
class LearnerConfig:
    world_size: int = 1  # learner ranks (one Ray actor each, one placement-group bundle each)
    device: Literal["cpu", "cuda"] = "cpu"
    cpus_per_rank: int = 1
    threads_per_rank: int = 1  # torch intra-op threads on CPU
    lr: float = 1e-6
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine floor, as a share of lr
    max_grad_norm: float = 1.0
    micro_batch_tokens: int = 4096  # packed tokens per forward pass
    minibatches: int = 1  # optimiser steps per training batch
    old_logprobs: Literal["learner", "engine"] = "learner"  # the ratio's denominator (SPEC section 6)
    bf16: bool = True  # mixed precision on GPU (parameters bf16, gradients reduced in fp32)
    activation_checkpointing: bool = False
    attention: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    loss: LossConfig = field(default_factory=LossConfig)
