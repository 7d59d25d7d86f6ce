"""Policies on the real simulator: budgets are exact, the language-model loop follows the protocol."""

import asyncio
import itertools
import json

import pytest

from simworkers.catalog import load_task
from simworkers.query import near_reference_query, seed_for
from system.agent.conversation import Conversation, Reply
from system.agent.policies import BayesOpt, LLMPolicy, RandomSearch
from system.agent.registry import make_policy
from tests.conftest import CountingSimulator  # noqa: F401 - fixture `sim` lives there

TASK = load_task("ota5t_generic")


@pytest.mark.parametrize("policy", [RandomSearch(), BayesOpt()], ids=["random", "bo"])
@pytest.mark.parametrize("budget", [1, 5])
def test_baselines_use_exactly_the_budget(sim, policy, budget):
    query = near_reference_query(TASK, seed_for("eval", 7))
    sim.calls.clear()
    episode = asyncio.run(policy.run(TASK, query, "n/a", budget, sim))
    assert len(sim.calls) == budget + 1  # the initial design, then exactly T
    assert sim.calls[0] == query.initial
    assert episode.simulations == budget + 1 and len(episode.designs) == budget
    for design in sim.calls[1:]:
        for p in TASK.params:
            assert p.lo <= design[p.name] <= p.hi
    assert 0.0 <= episode.best_score <= 1.0
    _, history = episode.per_turn()
    assert history == sorted(history) and history[-1] == max(episode.best_score, episode.initial_score)


def test_baselines_are_reproducible(sim):
    query = near_reference_query(TASK, seed_for("eval", 2))
    a = asyncio.run(BayesOpt().run(TASK, query, "n/a", 3, sim))
    b = asyncio.run(BayesOpt().run(TASK, query, "n/a", 3, sim))
    assert [t.design for t in a.turns] == [t.design for t in b.turns]


class ScriptedSession(Conversation):
    def __init__(self, replies, log):
        self.replies, self.log, self.ids = replies, log, []

    async def reply(self, state):
        text = self.replies.pop(0)
        self.log.append(("assistant", text))
        return Reply(text)

    def add(self, role, text):
        self.log.append((role, text))

    def fork(self):
        return ScriptedSession(list(self.replies), list(self.log))


def call(**args):
    return "<Analyze>try</Analyze><tool_call>" + json.dumps({"name": "simulate", "arguments": args}) + "</tool_call>"


def test_llm_loop_merges_partial_designs_and_ends(sim):
    replies = [call(w_in="30u"), "no idea", call(ibias="20 uA"), "<Analyze>good</Analyze><Design End>"]
    log = []
    policy = LLMPolicy("scripted", lambda task, first: ScriptedSession(replies, log))
    query = near_reference_query(TASK, seed_for("eval", 0))
    sim.calls.clear()
    episode = asyncio.run(policy.run(TASK, query, "multi-turn", 5, sim))
    assert [t.action for t in episode.turns] == ["initial", "call", "none", "call", "end"]
    assert sim.calls[1]["w_in"] == pytest.approx(30e-6) and sim.calls[1]["l_in"] == query.initial["l_in"]
    assert sim.calls[2]["ibias"] == pytest.approx(20e-6) and sim.calls[2]["w_in"] == pytest.approx(30e-6)
    assert not episode.turns[2].format_ok and ("user",) == log[3][:1]
    assert [kind for kind, _ in log].count("tool") == 2
    assert "Simulations left: 3" in log[-2][1]


def test_llm_call_past_the_budget_and_invalid_values(sim):
    replies = [call(w_in="1 meter"), call(w_in="40u"), call(w_in="41u")]
    policy = LLMPolicy("scripted", lambda task, first: ScriptedSession(replies, []))
    sim.calls.clear()
    episode = asyncio.run(policy.run(TASK, near_reference_query(TASK, seed_for("eval", 1)), "multi-turn", 2, sim))
    actions = [t.action for t in episode.turns]
    assert actions == ["initial", "call", "call", "over_budget"]
    assert episode.turns[1].result.status == "invalid" and "w_in" in episode.turns[1].result.reason
    assert len(sim.calls) == 2  # the invalid design never reached the simulator
    assert not episode.turns[3].format_ok and "past the budget" in episode.turns[3].errors[0]


def test_st_iter_starts_each_turn_from_the_query_and_latest_result(sim):
    firsts = []

    def factory(task, first):
        firsts.append(first)
        return ScriptedSession([call(w_in=f"{30 + len(firsts)}u")], [])

    asyncio.run(
        LLMPolicy("scripted", factory).run(TASK, near_reference_query(TASK, seed_for("eval", 4)), "st-iter", 3, sim)
    )
    assert len(firsts) == 4
    assert "Initial design (turn 0)" in firsts[0]
    assert "Most recent design" in firsts[1] and "w_in=31u m" in firsts[1] and "2 more times" in firsts[1]
    assert "1 more time." in firsts[2] and "w_in=32u m" in firsts[2]


def test_hf_policy_with_a_tiny_local_model(sim, tmp_path):
    from system.models.tiny import build_tiny_model

    path = build_tiny_model(tmp_path / "tiny")
    policy = make_policy(f"hf:{path}", max_new_tokens=24, seed=0)
    episode = asyncio.run(policy.run(TASK, near_reference_query(TASK, seed_for("eval", 5)), "multi-turn", 2, sim))
    assert 2 <= len(episode.turns) <= 4
    spans = [t.action_span for t in episode.turns[1:]]
    assert all(s is not None and s[1] > s[0] for s in spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # in order, never overlapping
    assert len(episode.ids) >= spans[-1][1]


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("gpt5")
