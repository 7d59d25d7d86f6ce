"""The policy loss (docs/design.md, "Loss") as a pure function: typed tensors in, loss and metrics out.

Token-level clipped surrogate with clip-higher (`eps_low`, `eps_high`), averaged over every
action token in the batch (token-mean, not sample-mean). Optional: a KL penalty against a frozen
reference (k3 estimator), and a truncated importance weight between the learner's old log-probs
and the engine's log-probs when the engine's are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field

from wire.config import Section


class LossConfig(Section):
    eps_low: float = Field(0.2, ge=0, lt=1, description="lower clip: ratios below 1 - eps_low are clipped")
    eps_high: float = Field(0.28, ge=0, description="upper clip (clip-higher): ratios above 1 + eps_high")
    kl_coef: float = Field(0.0, ge=0, description="weight of the k3 KL penalty against a frozen reference")
    tis_cap: float = Field(2.0, ge=1, description="truncation of the engine-to-learner importance weight")


@dataclass
class LossInputs:
    logprobs: torch.Tensor  # [tokens] current policy, with grad
    old_logprobs: torch.Tensor  # [tokens] policy that the ratio is taken against (no grad)
    advantages: torch.Tensor  # [tokens]
    mask: torch.Tensor  # [tokens] bool: action tokens
    ref_logprobs: torch.Tensor | None = None  # [tokens] frozen reference, for the KL term
    engine_logprobs: torch.Tensor | None = None  # [tokens] sampler's, for the truncated IS weight


@dataclass
class LossOutputs:
    loss: torch.Tensor  # scalar
    clip_fraction: torch.Tensor  # share of action tokens whose ratio was clipped
    kl: torch.Tensor  # mean k3 KL (0 without a reference)
    ratio_mean: torch.Tensor


def policy_loss(x: LossInputs, cfg: LossConfig, n_tokens: int | None = None) -> LossOutputs:
    """`n_tokens`: the number of action tokens in the whole batch, when `x` is one micro-batch
    of it, so that micro-batch losses add up to the batch's token mean."""
    mask = x.mask.to(x.logprobs.dtype)
    denom = float(n_tokens) if n_tokens is not None else mask.sum().clamp(min=1.0)
    log_ratio = (x.logprobs - x.old_logprobs).clamp(-20.0, 20.0)
    ratio = torch.exp(log_ratio)
    unclipped = ratio * x.advantages
    clipped = ratio.clamp(1.0 - cfg.eps_low, 1.0 + cfg.eps_high) * x.advantages
    per_token = -torch.minimum(unclipped, clipped)
    if x.engine_logprobs is not None:
        weight = torch.exp((x.old_logprobs - x.engine_logprobs).clamp(max=20.0)).clamp(max=cfg.tis_cap)
        per_token = per_token * weight.detach()
    kl = torch.zeros((), dtype=x.logprobs.dtype)
    if cfg.kl_coef > 0 and x.ref_logprobs is not None:
        d = (x.ref_logprobs - x.logprobs).clamp(-20.0, 20.0)
        k3 = torch.exp(d) - d - 1.0
        per_token = per_token + cfg.kl_coef * k3
        kl = (k3 * mask).sum() / denom
    loss = (per_token * mask).sum() / denom
    with torch.no_grad():
        was_clipped = ((ratio < 1.0 - cfg.eps_low) & (x.advantages < 0)) | (
            (ratio > 1.0 + cfg.eps_high) & (x.advantages > 0)
        )
        clip_fraction = (was_clipped.to(mask.dtype) * mask).sum() / mask.sum().clamp(min=1.0)
        ratio_mean = (ratio * mask).sum() / mask.sum().clamp(min=1.0)
    return LossOutputs(loss, clip_fraction, kl.detach(), ratio_mean)


def sft_loss(logprobs: torch.Tensor, mask: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Cross-entropy on the masked tokens, as a share of the batch's `n_tokens` (token mean)."""
    return -(logprobs * mask.to(logprobs.dtype)).sum() / float(n_tokens)
