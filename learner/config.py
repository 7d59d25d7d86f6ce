"""The learner's settings, validated at the config boundary (system/config.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from learner.loss import LossConfig
from wire.config import Section, rule


class LearnerConfig(Section):
    world_size: int = Field(1, ge=1, description="learner ranks (one Ray actor and placement-group bundle each)")
    device: Literal["cpu", "cuda"] = "cpu"
    cpus_per_rank: int = Field(1, ge=0)
    threads_per_rank: int = Field(1, ge=1, description="torch intra-op threads on CPU")
    lr: float = Field(1e-6, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    adam_betas: tuple[float, float] = Field((0.9, 0.999), strict=False)  # YAML writes a list
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine floor, as a share of lr")
    max_grad_norm: float = Field(1.0, gt=0)
    micro_batch_tokens: int = Field(4096, ge=1, description="packed tokens per forward pass")
    minibatches: int = Field(1, ge=1, description="optimiser steps per training batch")
    old_logprobs: Literal["learner", "engine"] = "learner"  # the ratio's denominator (docs/design.md, "Loss")
    bf16: bool = True  # mixed precision on GPU (parameters bf16, gradients reduced in fp32)
    activation_checkpointing: bool = False
    # train only the top N decoder layers and the final norm; the rest (embeddings and a tied head
    # included) stay as loaded, and only what trains is published to the rollout actors. None: all
    train_layers: int | None = Field(None, ge=1)
    # blocks: each packed block's attention costs what it attends (learner/attention.py);
    # sdpa: one dense [L, L] block mask per packed row, the reference (costs L squared)
    attention: Literal["blocks", "sdpa"] = "blocks"
    # a mixture-of-experts model's experts on GPU: grouped_mm (one grouped GEMM, SM80+; the rank
    # refuses to start where transformers cannot dispatch it, never falls back in silence) or eager
    # (a Python loop over experts). On CPU transformers chooses.
    experts: Literal["grouped_mm", "eager"] = "grouped_mm"
    loss: LossConfig = Field(default_factory=LossConfig)

    @model_validator(mode="after")
    def _consistent(self) -> LearnerConfig:
        if self.old_logprobs == "engine" and self.minibatches != 1:
            raise rule(
                "old_logprobs",
                "'engine' uses the update's own log-probs as the old ones, so it needs learner.minibatches=1",
            )
        return self
