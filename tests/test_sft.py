"""The format warm-up's data (system/sft.py) on the real simulator: every synthetic reply is in the
protocol's format, designs stay inside the ranges, budgets cycle, and only reply tokens train."""

import asyncio

import pytest

from simworkers.catalog import load_task
from simworkers.units import parse_quantity
from system.agent.protocol import parse_reply
from system.rl.sft import END_TEXT, sft_arrow, synthetic_batch

TASKS = [load_task("ota5t_generic"), load_task("tia_gf180")]


@pytest.fixture(scope="module")
def fmt(tmp_path_factory):
    from transformers import AutoTokenizer

    from system.agent.conversation import ChatFormat
    from system.models.tiny import build_tokenizer

    path = tmp_path_factory.mktemp("tok")
    build_tokenizer(path)
    return ChatFormat(AutoTokenizer.from_pretrained(path))


def test_synthetic_episodes_follow_the_protocol(fmt, sim):
    samples = asyncio.run(synthetic_batch(TASKS, 7, 8, [2, 3], fmt, sim))
    # tasks cycle fastest, then budgets: episodes 0-1 budget 2, 2-3 budget 3, 4-5 budget 2, ...
    assert [s.task for s in samples] == [t.name for t in TASKS] * 4
    assert [len(s.segments) for s in samples] == [3, 3, 4, 4, 3, 3, 4, 4]  # budget calls + <Design End>
    assert len(sim.calls) == sum(1 + len(s.segments) - 1 for s in samples)  # initial design + each call
    for sample in samples:
        task = load_task(sample.task)
        replies = [
            fmt.tokenizer.decode(sample.ids[seg.start : seg.end], skip_special_tokens=True) for seg in sample.segments
        ]
        for reply in replies[:-1]:
            parsed = parse_reply(reply, task)
            assert parsed.format_ok and parsed.action == "call", parsed.errors
            for p in task.params:
                assert p.lo * 0.99 <= parse_quantity(parsed.arguments[p.name], p.unit) <= p.hi * 1.01, p.name
        assert replies[-1] == END_TEXT and parse_reply(replies[-1], task).action == "end"
        assert all(sample.ids[seg.end - 1] == fmt.stop_id for seg in sample.segments)


def test_sft_batch_trains_on_reply_tokens_only(fmt, sim):
    samples = asyncio.run(synthetic_batch(TASKS, 11, 2, [1], fmt, sim))
    batch = sft_arrow(samples)
    masks, advantages = batch.column("loss_mask").to_pylist(), batch.column("advantages").to_pylist()
    for sample, mask, adv in zip(samples, masks, advantages):
        reply_tokens = sum(seg.end - seg.start for seg in sample.segments)
        assert sum(mask) == reply_tokens < len(sample.ids)
        assert adv == [1.0 if m else 0.0 for m in mask]
