"""Rollout plans and the buffer on the real simulator with a scripted generator: simulation
counts, group shapes, token ids kept as sampled, advantages by hand."""

import asyncio
import math
import random

import pyarrow as pa
import pytest

from simworkers.catalog import load_task
from simworkers.query import near_reference_query, seed_for
from system.config import AlgorithmConfig
from system.rl.advantages import discounted_returns, group_advantages, gtpo_advantages
from system.rl.buffer import SCHEMA, Buffer, Group, Sample, Segment
from system.rl.plans import Rollout
from wire.sampling import Generation, Sampling

TASK = load_task("ota5t_generic")


@pytest.fixture(scope="module")
def fmt(tmp_path_factory):
    from transformers import AutoTokenizer

    from system.agent.conversation import ChatFormat
    from system.models.tiny import build_tokenizer

    path = tmp_path_factory.mktemp("tok")
    build_tokenizer(path)
    return ChatFormat(AutoTokenizer.from_pretrained(path))


class ScriptedGenerator:
    """Replies with a valid call on random widths (so group rewards differ), or <Design End>
    with probability `p_end`; remembers every prompt and every id it produced."""

    def __init__(self, fmt, seed=0, p_end=0.0):
        self.fmt, self.rng, self.p_end = fmt, random.Random(seed), p_end
        self.version = 3
        self.produced: list[tuple[list[int], list[int]]] = []

    async def generate(self, prompt_ids, sampling):
        await asyncio.sleep(0)
        if self.rng.random() < self.p_end:
            text = "<Analyze>done</Analyze><Design End>"
        else:
            w = self.rng.choice(["29u", "32u", "35u"])  # inside both tasks' w_in ranges (ota5t, telescopic)
            text = (
                '<Analyze>try</Analyze><tool_call>{"name": "simulate", "arguments": {"w_in": "' + w + '"}}</tool_call>'
            )
        ids = [*self.fmt.tokenizer.encode(text, add_special_tokens=False), self.fmt.stop_id]
        self.produced.append((list(prompt_ids), ids))
        return Generation(ids, [-0.1 * (i % 7) for i in range(len(ids))], True, self.version)


def run(
    fmt, sim, algorithm, G=4, T=3, p_end=0.0, seed=0, rollout_out=None, max_prompt_tokens=None, end_reward="history"
):
    gen = ScriptedGenerator(fmt, seed, p_end)
    algo = AlgorithmConfig(name=algorithm, group_size=G, budget=T, end_reward=end_reward)
    rollout = Rollout(gen, fmt, sim, algo, Sampling(), max_prompt_tokens)
    sim.calls.clear()
    groups = asyncio.run(rollout.run(TASK, near_reference_query(TASK, seed_for("train", seed))))
    if rollout_out is not None:
        rollout_out.append(rollout)
    return groups, gen


@pytest.mark.parametrize("algorithm", ["tl_grpo", "traj_grpo"])
def test_a_history_past_the_prompt_cap_is_not_continued(fmt, sim, algorithm):
    uncapped, gen = run(fmt, sim, algorithm, G=3, T=4)
    assert max(seg.turn for g in uncapped for s in g.samples for seg in s.segments) >= 4
    first = min(len(p) for p, _ in gen.produced)  # the query's prompt; every later history is longer
    out = []
    groups, gen = run(fmt, sim, algorithm, G=3, T=4, rollout_out=out, max_prompt_tokens=first + 1)
    assert {len(p) for p, _ in gen.produced} == {first}  # nothing generated from a history over the cap
    assert max(seg.turn for g in groups for s in g.samples for seg in s.segments) == 1
    assert out[0].cut_histories == (1 if algorithm == "tl_grpo" else 3)  # one backbone, or G trajectories


def test_best_so_far_curves_follow_each_trajectory(fmt, sim):
    from system.rl.metrics import best_so_far_metrics

    out = []
    groups, _ = run(fmt, sim, "traj_grpo", G=4, T=3, rollout_out=out)
    curves = out[0].take_best_curves()
    assert len(curves) == 4 and out[0].best_curves == []
    for curve, sample in zip(curves, groups[0].samples):
        assert len(curve) == 4  # turn 0 (the initial design) and three calls
        assert curve == sorted(curve)  # a running best never falls
        assert curve[-1] >= sample.score  # the sample's best call, or the initial design if better
    metrics = best_so_far_metrics(curves, 3)
    assert list(metrics) == [f"best_so_far/turn_{t}" for t in range(4)]
    assert metrics["best_so_far/turn_3"] == pytest.approx(sum(c[-1] for c in curves) / 4)
    assert best_so_far_metrics([[0.1, 0.5]], 3)["best_so_far/turn_3"] == 0.5  # ended early: keeps its best


@pytest.mark.parametrize("algorithm", ["tl_grpo", "single_turn", "traj_grpo", "gtpo"])
def test_every_algorithm_spends_t_times_g_simulations(fmt, sim, algorithm):
    groups, _ = run(fmt, sim, algorithm, G=4, T=3)
    assert len(sim.calls) == 1 + 3 * 4  # the initial design, then T x G
    if algorithm in ("tl_grpo", "single_turn"):
        assert len(groups) == 3 and all(len(g.samples) == 4 for g in groups)
        assert [g.samples[0].turn for g in groups] == [1, 2, 3]
    else:
        assert len(groups) == 1 and len(groups[0].samples) == 4


def test_tl_grpo_groups_share_their_history_and_keep_engine_ids(fmt, sim):
    groups, gen = run(fmt, sim, "tl_grpo", G=4, T=3)
    produced = {tuple(p + i) for p, i in gen.produced}
    previous_history = None
    for group in groups:
        starts = {s.segments[0].start for s in group.samples}
        assert len(starts) == 1
        start = starts.pop()
        histories = {tuple(s.ids[:start]) for s in group.samples}
        assert len(histories) == 1  # every member branches from the same h_t
        history = histories.pop()
        if previous_history is not None:
            assert history[: len(previous_history)] == previous_history  # h_t extends h_{t-1}
        previous_history = history
        for s in group.samples:
            assert tuple(s.ids) in produced  # prompt + the exact ids the engine produced
            assert s.policy_version == 3


def test_single_turn_histories_are_fresh_prompts(fmt, sim):
    groups, _ = run(fmt, sim, "single_turn", G=3, T=3)
    h1, h2 = (g.samples[0].ids[: g.samples[0].segments[0].start] for g in groups[:2])
    assert h2[: len(h1)] != h1  # not an extension: a new prompt with the latest result
    assert "Most recent design" in fmt.tokenizer.decode(h2)


def test_design_end_reward_is_the_best_score_in_the_history(fmt, sim):
    groups, _ = run(fmt, sim, "tl_grpo", G=6, T=3, p_end=0.4, seed=5)
    for group in groups:
        for s in group.samples:
            text = fmt.tokenizer.decode(s.ids[s.segments[0].start :])
            if "<Design End>" in text:
                assert s.segments[0].reward == s.score  # format fine: no penalty
    assert len(sim.calls) <= 1 + 3 * 6


def test_design_end_can_earn_only_the_policys_own_designs(fmt, sim):
    """With end_reward "own", ending at the first turn earns 0 whatever the initial design scored
    (the sample still records the design it delivers), and a later end earns the backbone's best
    call so far."""
    ends = {"history": [], "own": []}
    for end_reward, found in ends.items():
        # seed 7: a training query whose initial design scores about 0.88
        groups, _ = run(fmt, sim, "tl_grpo", G=6, T=3, p_end=0.4, seed=7, end_reward=end_reward)
        backbone_best = 0.0
        for group in groups:
            for s in group.samples:
                if "<Design End>" in fmt.tokenizer.decode(s.ids[s.segments[0].start :]):
                    found.append((s.turn, s.segments[0].reward, s.score))
                    assert s.segments[0].reward == (s.score if end_reward == "history" else backbone_best)
            backbone_best = max(backbone_best, group.samples[0].score)  # the backbone's call at this turn
    assert any(turn == 1 for turn, _, _ in ends["own"])  # the seed does end at the first turn
    assert ends["history"] == [(t, r, sc) for t, _, sc in ends["own"] for r in [sc]]  # same rollouts
    assert all(reward == 0.0 for turn, reward, _ in ends["own"] if turn == 1)
    assert any(score > 0 for turn, _, score in ends["own"] if turn == 1)  # the initial design scored


def test_buffer_batch_matches_the_samples(fmt, sim):
    groups, _ = run(fmt, sim, "tl_grpo", G=4, T=2, seed=2)
    buffer = Buffer(flat_groups="keep", share_prefixes=False)
    for g in groups:
        buffer.add(g)
    batch = buffer.take(len(buffer))
    assert batch.schema == SCHEMA and batch.num_rows == 8
    rows = batch.to_pylist()
    for row, sample in zip(rows, [s for g in groups for s in g.samples]):
        seg = sample.segments[0]
        assert row["input_ids"] == sample.ids
        assert row["loss_mask"] == [seg.start <= i < seg.end for i in range(len(sample.ids))]
        assert row["old_logprobs"][seg.start : seg.end] == pytest.approx(seg.logprobs)
        assert all(v is None for v in row["old_logprobs"][: seg.start])
    for g, chunk in zip(groups, [rows[i : i + 4] for i in range(0, 8, 4)]):
        expected = group_advantages(g.rewards)
        got = [next(a for a, m in zip(r["advantages"], r["loss_mask"]) if m) for r in chunk]
        assert got == pytest.approx(expected, abs=1e-6)
    # shared: one row per turn group, its history once; prefix + branch k is sample k, mask and all
    shared = Buffer(flat_groups="keep")
    for g in groups:
        shared.add(g)
    grouped = shared.take(len(shared)).to_pylist()
    assert len(grouped) == len(groups)
    for g, row, chunk in zip(groups, grouped, [rows[i : i + 4] for i in range(0, 8, 4)]):
        p = row["bounds"][0]
        assert p == min(s.segments[0].start for s in g.samples) and row["input_ids"][:p] == g.samples[0].ids[:p]
        for k, (sample, unshared) in enumerate(zip(g.samples, chunk)):
            lo, hi = row["bounds"][k], row["bounds"][k + 1]
            assert row["input_ids"][:p] + row["input_ids"][lo:hi] == sample.ids
            for column in ("loss_mask", "advantages", "old_logprobs"):
                assert row[column][:p] + row[column][lo:hi] == unshared[column]


def test_advantages_by_hand():
    assert group_advantages([1.0, 0.0, 0.5]) == pytest.approx([1.2247, -1.2247, 0.0], abs=1e-3)
    assert group_advantages([0.3, 0.3]) == pytest.approx([0.0, 0.0])
    assert discounted_returns([1.0, 0.0, 2.0], 0.5) == pytest.approx([1.5, 1.0, 2.0])
    adv = gtpo_advantages([[1.0, 0.0], [0.0, 1.0], [0.5]], gamma=0.9)
    # turn 0 returns: 1.0, 0.9, 0.5 -> normalised over all three; turn 1 returns: 0, 1 over two
    r0 = [1.0, 0.9, 0.5]
    m, sd = sum(r0) / 3, math.sqrt(sum((x - sum(r0) / 3) ** 2 for x in r0) / 3)
    assert [a[0] for a in adv] == pytest.approx([(x - m) / (sd + 1e-6) for x in r0])
    assert adv[0][1] == pytest.approx(-1.0, abs=1e-4) and adv[1][1] == pytest.approx(1.0, abs=1e-4)


def _group(rewards, per_turn=False):
    samples = [Sample([1, 2, 3, 4], [Segment(2, 4, r, [-0.5, -0.5], 1)], "t", 0, r, True, 0, 1) for r in rewards]
    return Group(0, samples, "tl_grpo", per_turn)


def test_flat_groups_are_dropped_or_kept_as_configured():
    drop, keep = Buffer("drop", share_prefixes=False), Buffer("keep", share_prefixes=False)
    for b in (drop, keep):
        b.add(_group([0.2, 0.2, 0.2]))
        b.add(_group([0.0, 1.0]))
    assert len(drop) == 2 and drop.dropped_groups == 1
    assert len(keep) == 5
    batch = keep.take(3)
    assert isinstance(batch, pa.RecordBatch) and batch.num_rows == 3 and len(keep) == 2
    assert batch.column("advantages").to_pylist()[0] == [0.0, 0.0, 0.0, 0.0]  # flat: zero signal


@pytest.mark.ray
def test_simulation_actor_killed_mid_rollout_loses_nothing(ray_cluster, fmt):
    from simworkers.pool import SimPool

    task = load_task("telescopic_sky130")

    async def run():
        pool = SimPool(2, max_batch=1)
        try:
            gen = ScriptedGenerator(fmt, seed=11)
            algo = AlgorithmConfig(name="tl_grpo", group_size=4, budget=3)
            rollout = Rollout(gen, fmt, pool.submit, algo, Sampling())
            job = asyncio.gather(*(rollout.run(task, near_reference_query(task, s)) for s in range(3)))
            while sum(pool.stats().completed.values()) < 6:
                await asyncio.sleep(0.02)
            pool.kill_actor(next(iter(pool.book.live_actors())))
            groups = [g for gs in await job for g in gs]
            return groups, pool.stats()
        finally:
            pool.shutdown()

    groups, stats = asyncio.run(run())
    assert stats.actor_deaths == 1
    assert sum(stats.completed.values()) == 3 * (1 + 3 * 4)  # every simulation answered once
    assert len(groups) == 9 and all(len(g.samples) == 4 for g in groups)
    assert stats.retried >= 1 and set(stats.completed) <= {"ok", "failed"}


class CuttingGenerator(ScriptedGenerator):
    """Every other reply runs to the token limit: its ids end without the stop token."""

    async def generate(self, prompt_ids, sampling):
        generation = await super().generate(prompt_ids, sampling)
        if len(self.produced) % 2:
            return generation
        ids = generation.ids[:-1]
        self.produced[-1] = (self.produced[-1][0], ids)
        return Generation(ids, generation.logprobs[:-1], False, self.version)


@pytest.mark.parametrize("cut_replies", ["allowed", "malformed"])
def test_replies_cut_at_the_token_limit_take_the_penalty_where_the_algorithm_says(fmt, sim, cut_replies):
    gen = CuttingGenerator(fmt, seed=3)
    algo = AlgorithmConfig(name="tl_grpo", group_size=4, budget=2, cut_replies=cut_replies)
    groups = asyncio.run(Rollout(gen, fmt, sim, algo, Sampling()).run(TASK, near_reference_query(TASK, 5)))
    samples = [s for g in groups for s in g.samples]
    ended = [s.ids[s.segments[-1].end - 1] == fmt.stop_id for s in samples]
    cut = [s for s, e in zip(samples, ended) if not e]
    whole = [s for s, e in zip(samples, ended) if e]
    assert cut and whole and all(s.format_ok for s in whole)
    assert all(s.format_ok == (cut_replies == "allowed") for s in cut)
    penalty = 0.5 if cut_replies == "malformed" else 0.0
    assert all(s.segments[-1].reward == pytest.approx(s.score - penalty) for s in cut)
