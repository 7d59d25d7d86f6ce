"""The policy loss against hand computations: clip-higher, token mean, KL (k3), truncated IS."""

import math

import pytest
import torch

from learner.loss import LossConfig, LossInputs, policy_loss


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_unclipped_ratio_one_is_minus_the_mean_advantage():
    x = LossInputs(t(0.0, 0.0, 0.0), t(0.0, 0.0, 0.0), t(1.0, -2.0, 4.0), torch.tensor([True, True, False]))
    out = policy_loss(x, LossConfig())
    assert out.loss.item() == pytest.approx(-(1.0 - 2.0) / 2)  # token mean over the 2 action tokens
    assert out.clip_fraction.item() == 0.0 and out.ratio_mean.item() == pytest.approx(1.0)


def test_clip_higher_is_asymmetric():
    cfg = LossConfig(eps_low=0.2, eps_high=0.28)
    up, down = math.log(1.5), math.log(0.5)
    # positive advantage, ratio 1.5: clipped at 1.28; negative advantage, ratio 0.5: clipped at 0.8
    x = LossInputs(t(up, down), t(0.0, 0.0), t(1.0, -1.0), torch.tensor([True, True]))
    out = policy_loss(x, cfg)
    assert out.loss.item() == pytest.approx(-(1.28 * 1.0 + 0.8 * -1.0) / 2)
    assert out.clip_fraction.item() == 1.0
    # the pessimistic side is not clipped: positive advantage with ratio 0.5 keeps 0.5
    y = LossInputs(t(down), t(0.0), t(1.0), torch.tensor([True]))
    assert policy_loss(y, cfg).loss.item() == pytest.approx(-0.5)


def test_gradient_flows_only_through_unclipped_action_tokens():
    logp = t(0.0, math.log(2.0), 0.0).requires_grad_()
    x = LossInputs(logp, t(0.0, 0.0, 0.0), t(1.0, 1.0, 1.0), torch.tensor([True, True, False]))
    policy_loss(x, LossConfig()).loss.backward()
    assert logp.grad.tolist() == pytest.approx([-0.5, 0.0, 0.0])  # d(-r A / 2)/dlogp at r=1; clipped; masked


def test_micro_batches_add_up_to_the_batch_token_mean():
    cfg = LossConfig()
    logp, old, adv = t(0.1, -0.2, 0.3, 0.0), t(0.0, 0.0, 0.0, 0.1), t(1.0, -1.0, 0.5, 2.0)
    mask = torch.tensor([True, True, True, True])
    whole = policy_loss(LossInputs(logp, old, adv, mask), cfg).loss
    parts = sum(
        policy_loss(LossInputs(logp[i : i + 2], old[i : i + 2], adv[i : i + 2], mask[i : i + 2]), cfg, n_tokens=4).loss
        for i in (0, 2)
    )
    assert parts.item() == pytest.approx(whole.item())


def test_k3_kl_term():
    d = 0.3  # ref - current
    x = LossInputs(t(0.0), t(0.0), t(0.0), torch.tensor([True]), ref_logprobs=t(d))
    out = policy_loss(x, LossConfig(kl_coef=0.1))
    k3 = math.exp(d) - d - 1
    assert out.kl.item() == pytest.approx(k3) and out.loss.item() == pytest.approx(0.1 * k3)
    assert policy_loss(x, LossConfig()).kl.item() == 0.0  # off by default


def test_truncated_importance_weight():
    # old (learner) vs engine: weight exp(old - engine), capped at 2
    x = LossInputs(t(0.0, 0.0), t(0.0, 0.0), t(1.0, 1.0), torch.tensor([True, True]), engine_logprobs=t(-0.1, -5.0))
    out = policy_loss(x, LossConfig(tis_cap=2.0))
    assert out.loss.item() == pytest.approx(-(math.exp(0.1) + 2.0) / 2)
