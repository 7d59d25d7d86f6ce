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


def _sft(out, *extra: str, **kw):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0", HF_HUB_OFFLINE="1")
    cmd = [
        str(Path(sys.executable).parent / "tlgrpo"), "sft", "tiny-cpu", f"run.out_dir={out}",
        "tasks.train=[ota5t_generic]", "sim.max_workers=1", "--episodes", "6", "--epochs", "4",
        "--batch-episodes", "1", "--budgets", "1", "--checkpoint-every", "4", *extra,
    ]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.ray
def test_a_killed_warm_up_resumes_to_the_model_it_would_have_made(tmp_path):
    """A warm-up killed after its first checkpoint, resumed with --resume, reads its episodes
    back, trains each remaining batch once and exports the same weights as one never killed;
    a warm-up asked for other settings refuses to resume."""
    import json
    import os
    import signal
    import time

    import torch

    whole = _sft(tmp_path / "whole")
    log, _ = whole.communicate(timeout=400)
    assert whole.returncode == 0, log[-3000:]

    out = tmp_path / "killed"
    proc = _sft(out, start_new_session=True)
    latest, deadline = out / "checkpoints" / "latest", time.monotonic() + 400
    while not (latest.exists() and latest.read_text().strip() == "step_000004"):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
    proc.wait()
    assert not (out / "final").exists(), "the warm-up finished before it was killed: nothing was resumed"
    episodes = (out / "sft_episodes.jsonl").stat().st_mtime_ns

    refused = _sft(out, "--lr", "0.01", "--resume")
    log, _ = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "lr 0.001 -> 0.01" in log, log[-2000:]
    again = _sft(out)
    log, _ = again.communicate(timeout=120)
    assert again.returncode == 2 and "--resume" in log, log[-2000:]

    resumed = _sft(out, "--resume")
    log, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, log[-3000:]
    assert "resumed the warm-up from" in log and "at step 4" in log
    assert "that the tool takes" in log  # the first replies, counted as parsed and as accepted
    assert (out / "sft_episodes.jsonl").stat().st_mtime_ns == episodes  # read back, not made again
    steps = [json.loads(x)["step"] for x in (out / "sft_metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(24))  # every batch once, in order
    reference, got = _weights(tmp_path / "whole" / "final"), _weights(out / "final")
    assert reference.keys() == got.keys()
    for name, tensor in reference.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_with_changes_a_synthetic_call_sets_a_few_parameters_and_keeps_the_rest(fmt, sim):
    samples = asyncio.run(synthetic_batch(TASKS, 3, 4, [3], fmt, sim, changes=2))
    counts = []
    for sample in samples:
        task = load_task(sample.task)
        for seg in sample.segments[:-1]:
            parsed = parse_reply(fmt.tokenizer.decode(sample.ids[seg.start : seg.end], skip_special_tokens=True), task)
            assert parsed.format_ok and parsed.action == "call", parsed.errors
            assert set(parsed.arguments) <= {p.name for p in task.params}
            for name, value in parsed.arguments.items():
                p = next(p for p in task.params if p.name == name)
                assert p.lo * 0.99 <= parse_quantity(value, p.unit) <= p.hi * 1.01, name
            counts.append(len(parsed.arguments))
    assert set(counts) == {1, 2}  # 1 to `changes` parameters a call, both seen in 12 calls


def test_a_first_reply_is_accepted_only_when_the_tool_would_simulate_it():
    import random

    from simworkers.query import near_reference_query
    from system.rl.sft import call_text, reply_standing

    task = TASKS[0]
    query = near_reference_query(task, 3)
    rng = random.Random(0)
    p = task.params[0]
    inside = call_text(task, {p.name: (p.lo + p.hi) / 2}, rng, [p.name])
    above = call_text(task, {p.name: p.hi * 10}, rng, [p.name])  # the right digits, the wrong prefix
    unknown = inside.replace(f'"{p.name}"', '"psrr_db"')
    assert reply_standing(inside, task, query.initial) == "accepted"
    assert reply_standing(END_TEXT, task, query.initial) == "accepted"
    assert reply_standing(above, task, query.initial) == "refused"
    assert reply_standing(unknown, task, query.initial) == "unparsed"
    assert reply_standing(inside.replace("<Analyze>", "<Analysis>"), task, query.initial) == "unparsed"
    assert reply_standing("I would raise the bias current.", task, query.initial) == "unparsed"
