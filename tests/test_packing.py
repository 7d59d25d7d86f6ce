"""Micro-batch planning and packing: pure functions, no Ray."""

import pytest
import torch

from learner.config import LearnerConfig
from learner.packing import dense_mask, pack, plan_micro_batches
from learner.schedule import lr_at


@pytest.mark.parametrize("world", [1, 2, 3])
def test_every_sample_once_same_count_per_rank_within_budget(world):
    lengths = [700, 50, 320, 999, 10, 400, 400, 260, 1500, 30, 90]
    plan = plan_micro_batches(lengths, 1000, world)
    assert len(plan) == world and len({len(r) for r in plan}) == 1
    seen = sorted(i for rank in plan for mb in rank for i in mb.rows)
    assert seen == list(range(len(lengths)))
    for rank in plan:
        for mb in rank:
            assert mb.tokens == sum(lengths[i] for i in mb.rows)
            assert mb.tokens <= 1000 or len(mb.rows) == 1  # only an oversized sample stands alone


def test_tokens_are_balanced_across_ranks():
    lengths = [100] * 40
    plan = plan_micro_batches(lengths, 400, 2)
    loads = [sum(mb.tokens for mb in rank) for rank in plan]
    assert loads == [2000, 2000]


def test_packing_restarts_positions_and_masks_across_samples():
    packed = pack([[5, 6, 7], [8, 9]])
    assert packed.input_ids.tolist() == [[5, 6, 7, 8, 9]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    mask = dense_mask(packed)[0, 0]
    assert mask[4].tolist() == [False, False, False, True, True]
    assert mask[2].tolist() == [True, True, True, False, False]
    assert pack([]).real == 0 and pack([]).input_ids.shape == (1, 1)


def test_packed_logprobs_equal_one_sample_at_a_time(tmp_path):
    from transformers import AutoModelForCausalLM

    from learner.forward import packed_logprobs
    from system.models.tiny import build_tiny_model

    build_tiny_model(tmp_path)
    from learner.attention import register

    model = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32, attn_implementation=register())
    torch.manual_seed(0)
    rows = [torch.randint(3, 400, (n,)).tolist() for n in (17, 9, 30)]
    for attention in ("blocks", "sdpa"):
        together, _ = packed_logprobs(model, pack(rows), torch.device("cpu"), attention)
        start = 0
        for row in rows:
            alone, _ = packed_logprobs(model, pack([row]), torch.device("cpu"), attention)
            assert torch.allclose(together[start + 1 : start + len(row)], alone[1:], atol=1e-5)
            start += len(row)


def test_learning_rate_schedule():
    cfg = LearnerConfig(lr=1.0, warmup_steps=4, schedule="cosine", min_lr_ratio=0.1)
    assert [lr_at(s, 14, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, 14, cfg) == pytest.approx(1.0)
    assert lr_at(14, 14, cfg) == pytest.approx(0.1)
    assert lr_at(9, 14, cfg) == pytest.approx(0.55)
    assert lr_at(100, 14, LearnerConfig(lr=0.5)) == 0.5
