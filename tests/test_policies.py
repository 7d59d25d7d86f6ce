"""Policies on the real simulator: budgets are exact, the language-model loop follows the protocol."""

import asyncio
import contextlib
import itertools
import json
import threading
import typing
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from simworkers.catalog import load_task
from simworkers.query import near_reference_query, seed_for
from system.agent.conversation import Conversation, Reply
from system.agent.endpoint import Backoff, EndpointError
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


class FakeOpenAI(BaseHTTPRequestHandler):
    """A chat-completions endpoint on loopback that answers with scripted tool calls."""

    requests: typing.ClassVar[list] = []
    faults: typing.ClassVar[list[int]] = []  # HTTP statuses to answer, one per request, before the real answers

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append((self.path, self.headers.get("Authorization"), body))
        if FakeOpenAI.faults:
            self.send_response(FakeOpenAI.faults.pop(0))
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        if turn < 2:
            message = {
                "role": "assistant",
                "content": "<Analyze>widen</Analyze>",
                "tool_calls": [
                    {
                        "id": f"call_{turn}",
                        "type": "function",
                        "function": {"name": "simulate", "arguments": json.dumps({"w_in": f"{30 + turn}u"})},
                    }
                ],
            }
        else:
            message = {"role": "assistant", "content": "<Analyze>done</Analyze><Design End>"}
        payload = json.dumps({"choices": [{"index": 0, "message": message}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def fake_openai(faults: list[int] = ()):
    FakeOpenAI.faults[:] = faults
    FakeOpenAI.requests.clear()
    server = HTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()


def test_openai_compatible_policy_against_a_loopback_server(sim, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    with fake_openai([503, 429]) as url:  # two transient faults first: retried (Retry-After: 0)
        policy = make_policy(f"openai:{url}", model="fake-model", api_key_env="TEST_KEY")
        sim.calls.clear()
        episode = asyncio.run(policy.run(TASK, near_reference_query(TASK, seed_for("eval", 6)), "multi-turn", 5, sim))
    assert len(FakeOpenAI.requests) == 2 + 3 and not episode.failure
    assert [t.action for t in episode.turns] == ["initial", "call", "call", "end"]
    assert all(t.format_ok for t in episode.turns[1:])
    assert sim.calls[2]["w_in"] == pytest.approx(31e-6)
    path, auth, body = FakeOpenAI.requests[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test" and body["model"] == "fake-model"
    assert body["tools"][0]["function"]["name"] == "simulate"
    tool_messages = [m for m in body["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_0", "call_1"]
    assert "score:" in tool_messages[0]["content"]


def test_an_endpoint_that_keeps_failing_ends_the_episode_as_an_infrastructure_failure(sim):
    with fake_openai([503] * 6) as url:  # the first request and its 5 retries
        policy = make_policy(f"openai:{url}", model="fake-model")
        episode = asyncio.run(policy.run(TASK, near_reference_query(TASK, seed_for("eval", 6)), "multi-turn", 5, sim))
    assert len(FakeOpenAI.requests) == 6
    assert "HTTP 503" in episode.failure and "after 6 attempts" in episode.failure
    assert [t.action for t in episode.turns] == ["initial"]  # turn 0 kept; nothing scored from the agent


def test_a_refused_request_is_not_retried_and_stops_the_evaluation(sim):
    with fake_openai([401]) as url, pytest.raises(EndpointError, match="HTTP 401"):
        policy = make_policy(f"openai:{url}", model="fake-model")
        asyncio.run(policy.run(TASK, near_reference_query(TASK, seed_for("eval", 6)), "multi-turn", 5, sim))
    assert len(FakeOpenAI.requests) == 1


def test_backoff_doubles_up_to_its_cap_and_obeys_retry_after():
    backoff = Backoff(retries=5, base_s=1.0, max_s=10.0)
    assert [backoff.delay(k) for k in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert backoff.delay(1, jitter=1.0) == 2.5  # at most 25 % more
    assert backoff.delay(0, retry_after_s=30.0) == 10.0 and backoff.delay(3, retry_after_s=0.5) == 0.5


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("gpt5")
