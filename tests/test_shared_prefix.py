"""Shared-prefix packing computes what the unshared rows compute: log-probs, entropy, the loss
and its gradients, on the tiny model in fp32, for TL-GRPO, trajectory-level and ST-iter shaped
groups, several groups to a packed row; and the buffer keeps each group's prefix once."""

import random

import pytest
import torch

from learner.forward import packed_logprobs
from learner.packing import pack
from system.rl.buffer import Buffer, Group, Sample, Segment
from wire.batch import SCHEMA

CPU = torch.device("cpu")
# (prefix length, branch lengths): a TL-GRPO turn group (a long history, G short actions), a
# trajectory-level group (the prompt, G whole trajectories), an ST-iter group (a short prompt)
SHAPES = {
    "tl_grpo": (120, [9, 14, 6, 11]),
    "traj_grpo": (40, [70, 55, 90]),
    "single_turn": (25, [8, 12, 5, 10, 7]),
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from learner.attention import register
    from system.models.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=register())


def groups(kinds: list[str], seed: int = 0) -> list[tuple[list[int], list[list[int]]]]:
    rng = random.Random(seed)
    out = []
    for kind in kinds:
        prefix, branches = SHAPES[kind]
        out.append(
            (
                [rng.randrange(3, 400) for _ in range(prefix)],
                [[rng.randrange(3, 400) for _ in range(n)] for n in branches],
            )
        )
    return out


def shared_rows(gs) -> tuple[list[list[int]], list[list[int]]]:
    rows, bounds = [], []
    for prefix, branches in gs:
        rows.append(prefix + [t for b in branches for t in b])
        cuts = [len(prefix)]
        for b in branches:
            cuts.append(cuts[-1] + len(b))
        bounds.append(cuts)
    return rows, bounds


def shared(gs):
    return pack(*shared_rows(gs))


def unshared(gs):
    return pack([prefix + b for prefix, branches in gs for b in branches])


def weights(gs) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token loss weights (an 'advantage' on each branch, 0 on prefixes) in both layouts."""
    rng = random.Random(7)
    shared_w, unshared_w = [], []
    for prefix, branches in gs:
        shared_w += [0.0] * len(prefix)
        for b in branches:
            a = rng.uniform(-1, 1)
            shared_w += [a] * len(b)
            unshared_w += [0.0] * len(prefix) + [a] * len(b)
    return torch.tensor(shared_w), torch.tensor(unshared_w)


def unshared_order(gs, values: torch.Tensor) -> torch.Tensor:
    """The shared row's per-token values laid out as the unshared rows: each branch after a copy
    of its prefix."""
    out, start = [], 0
    for prefix, branches in gs:
        p = len(prefix)
        head = values[start : start + p]
        offset = start + p
        for b in branches:
            out += [head, values[offset : offset + len(b)]]
            offset += len(b)
        start = offset
    return torch.cat(out)


def grads(model, packed, attention, w) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    model.zero_grad(set_to_none=True)
    logprobs, entropy = packed_logprobs(model, packed, CPU, attention, temperature=0.9)
    loss = -(logprobs * w).sum()
    loss.backward()
    return logprobs.detach(), entropy, loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize(
    "kinds",
    [["tl_grpo"], ["traj_grpo"], ["single_turn"], ["tl_grpo", "single_turn", "traj_grpo", "tl_grpo"]],
    ids=["tl_grpo", "traj_grpo", "single_turn", "several_groups_per_row"],
)
@pytest.mark.parametrize("attention", ["blocks", "sdpa"])
def test_shared_prefix_equals_unshared(model, kinds, attention):
    gs = groups(kinds)
    w_shared, w_unshared = weights(gs)
    lp_s, ent_s, loss_s, grad_s = grads(model, shared(gs), attention, w_shared)
    lp_u, ent_u, loss_u, grad_u = grads(model, unshared(gs), "blocks", w_unshared)
    assert (unshared_order(gs, lp_s) - lp_u).abs().max() <= 1e-4
    assert (unshared_order(gs, ent_s) - ent_u).abs().max() <= 1e-4
    assert abs(loss_s - loss_u) <= 1e-4 * max(1.0, abs(loss_u))
    worst = max((grad_s[n] - grad_u[n]).abs().max().item() for n in grad_u)
    assert worst <= 1e-4, worst
    assert max(g.abs().max().item() for g in grad_u.values()) > 1e-3  # the gradients are not all zero


def test_buffer_keeps_each_groups_prefix_once():
    rng = random.Random(3)
    history = [rng.randrange(3, 400) for _ in range(50)]
    samples = []
    for k in range(4):
        action = [5 + k] + [rng.randrange(3, 400) for _ in range(6 + k)]
        samples.append(
            Sample(
                history + action,
                [Segment(50, 50 + len(action), float(k), [-0.5] * len(action), 2)],
                "t",
                1,
                0.1 * k,
                True,
                3,
                2,
            )
        )
    lone = Sample([1, 2, 3, 4], [Segment(2, 4, 1.0, [-1.0, -1.0], 1)], "t", 2, 0.5, True, 3, 1)
    other = Sample([9, 8, 7, 6], [Segment(1, 4, 0.0, [-1.0] * 3, 1)], "t", 2, 0.5, True, 3, 1)
    buffer = Buffer(flat_groups="keep")
    buffer.add(Group(0, samples, "tl_grpo"))
    buffer.add(Group(1, [lone, other], "tl_grpo"))  # nothing in common: one row each
    batch = buffer.take(len(buffer))
    assert batch.schema == SCHEMA and batch.num_rows == 3
    row = batch.slice(0, 1).to_pylist()[0]
    assert row["input_ids"][:50] == history and len(row["input_ids"]) == 50 + sum(7 + k for k in range(4))
    assert row["bounds"] == [50, 57, 65, 74, 84]
    assert not any(row["loss_mask"][:50]) and all(row["loss_mask"][50:])
    assert row["reward"] == [0.0, 1.0, 2.0, 3.0] and row["turn"] == [2] * 4
    unshared = Buffer(flat_groups="keep", share_prefixes=False)
    unshared.add(Group(0, samples, "tl_grpo"))
    assert unshared.take(4).num_rows == 4
    assert [r["bounds"] for r in batch.slice(1, 2).to_pylist()] == [[0, 4], [0, 4]]


def test_chunked_logprobs_equal_one_chunk(model, monkeypatch):
    """Log-probs, entropy and gradients are the same whether the head runs on 7 tokens at a time
    (each chunk recomputed in backward) or on the whole row."""
    import learner.forward

    gs = groups(["tl_grpo", "single_turn"], seed=4)
    w, _ = weights(gs)
    whole = grads(model, shared(gs), "blocks", w)
    monkeypatch.setattr(learner.forward, "LOGPROB_CHUNK", 7)
    chunked = grads(model, shared(gs), "blocks", w)
    assert (whole[0] - chunked[0]).abs().max() <= 1e-5 and (whole[1] - chunked[1]).abs().max() <= 1e-5
    assert max((whole[3][n] - chunked[3][n]).abs().max().item() for n in whole[3]) <= 1e-5


def test_flex_block_mask_matches_the_per_block_calls():
    """The GPU path (flex attention with a block mask) gives the CPU path's outputs, forward."""
    from learner.attention import flex_blocks, sdpa_blocks

    gs = groups(["tl_grpo", "single_turn", "traj_grpo"], seed=9)
    rows, bounds = shared_rows(gs[:2])
    packed = pack([*rows, gs[2][0] + gs[2][1][0]], [*bounds, None])  # and a row that shares nothing
    torch.manual_seed(1)
    q, k, v = (
        torch.randn(1, 4, packed.length, 32),
        torch.randn(1, 2, packed.length, 32),
        torch.randn(1, 2, packed.length, 32),
    )
    expected = sdpa_blocks(q, k, v, packed, scaling=None)
    assert (flex_blocks(q, k, v, packed, scaling=None) - expected).abs().max() <= 1e-5
