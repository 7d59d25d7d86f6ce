"""The OpenAI-compatible client against a loopback server (tests/fake_openai.py): the SDK's retries,
which faults stop an evaluation, the tool modes and what `auto` takes, the served context. The same
path against vLLM's real server is tests/test_openai_server.py."""

import asyncio

import pytest

from simworkers.catalog import load_task
from simworkers.query import near_reference_query, seed_for
from system.agent.endpoint import EndpointError, connect, names_context, prompt_tokens_named
from system.agent.registry import make_policy
from tests.conftest import CountingSimulator  # noqa: F401 - fixture `sim` lives there
from tests.fake_openai import FakeOpenAI, fake_openai

TASK = load_task("ota5t_generic")
QUERY = near_reference_query(TASK, seed_for("eval", 6))


def _run(policy, sim, budget: int = 5):
    return asyncio.run(policy.run(TASK, QUERY, "multi-turn", budget, sim))


def test_native_mode_sends_tools_retries_transient_faults_and_answers_calls_by_id(sim, monkeypatch, capsys):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    with fake_openai([503, 429]) as url:  # two transient faults first: the SDK retries them
        policy = make_policy(f"openai:{url}", model="fake-model", api_key_env="TEST_KEY", tools="native")
        sim.calls.clear()
        episode = _run(policy, sim)
    assert "tool mode native: as asked" in capsys.readouterr().out
    assert "sk-test" not in policy.name
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
    # the record keeps what the server returned: the content and the call, apart
    served = episode.turns[1].served
    assert served["content"] == "<Analyze>widen</Analyze>" and served["tool_calls"][0]["name"] == "simulate"
    assert served["prompt_tokens"] == 100 and served["finish_reason"] == "stop"
    assert episode.turns[1].reply.startswith("<Analyze>widen</Analyze>\n<tool_call>")


def test_text_mode_puts_the_tool_block_in_a_system_message_and_sends_no_tools(sim, capsys):
    with fake_openai() as url:  # --model left out: the server's only model
        policy = make_policy(f"openai:{url}", tools="text")
        episode = _run(policy, sim)
    assert policy.name == "openai:fake-model"
    assert [t.action for t in episode.turns] == ["initial", "call", "call", "end"]
    _, _, body = FakeOpenAI.requests[-1]
    assert "tools" not in body and "top_p" not in body  # no --top-p: the server's own
    assert body["messages"][0]["role"] == "system" and "<tools>" in body["messages"][0]["content"]
    assert body["messages"][2]["content"].endswith("</tool_call>")  # the model's raw text goes back as it was
    assert [m["role"] for m in body["messages"][3::2]] == ["tool", "tool"]  # as the local engines send them
    assert episode.turns[1].served["content"] == episode.turns[1].reply  # text mode: the raw text is the reply


def test_the_sampling_asked_for_goes_with_every_request(sim):
    with fake_openai() as url:
        episode = _run(make_policy(f"openai:{url}", tools="text", temperature=0.7, top_p=0.9), sim)
    assert not episode.failure and len(FakeOpenAI.requests) == 3
    assert all(body["temperature"] == 0.7 and body["top_p"] == 0.9 for _, _, body in FakeOpenAI.requests)


@pytest.mark.parametrize(
    ("settings", "mode", "why"),
    [
        ({}, "text", "has no usable /tokenize"),
        ({"template": {"schema": False, "calls": False}}, "text", "does not render the tool schema"),
        (
            {"template": {"schema": True, "calls": True}, "refuse_tools": True},
            "text",
            'the server refuses tools (HTTP 400: "auto" tool choice requires --enable-auto-tool-choice',
        ),
        ({"template": {"schema": True, "calls": True}}, "native", "renders the tool schema and the calls made"),
        ({"template": {"schema": True, "calls": False}}, "native", "the calls made go back in the assistant's text"),
    ],
    ids=["no-tokenize", "no-schema", "refused", "native", "native-echo"],
)
def test_auto_takes_native_only_where_the_server_accepts_tools_and_the_template_renders_them(settings, mode, why):
    with fake_openai(**settings) as url:
        served = connect(url, None, None, "auto")
    assert served.tool_mode == mode and why in served.why
    assert served.echo_calls == (settings.get("template") == {"schema": True, "calls": False})
    assert served.line().startswith(f"openai:{url} model fake-model (context 8192 tokens): tool mode {mode}: ")


def test_native_mode_writes_calls_into_the_text_for_a_template_that_drops_them(sim):
    with fake_openai(template={"schema": True, "calls": False}) as url:
        _run(make_policy(f"openai:{url}"), sim)
    _, _, body = FakeOpenAI.requests[-1]
    assistant = [m for m in body["messages"] if m["role"] == "assistant"]
    assert all("<tool_call>" in m["content"] and m["tool_calls"] for m in assistant)


def test_the_server_and_model_are_checked_before_any_episode():
    with pytest.raises(ValueError, match=r"cannot be reached .*is the server up\?"):
        connect("http://127.0.0.1:9/v1", None, None)
    with fake_openai() as url, pytest.raises(ValueError, match=r"no model 'gpt' there \(it serves fake-model\)"):
        connect(url, "gpt", None)
    two = [{"id": "a", "object": "model"}, {"id": "b", "object": "model"}]
    with fake_openai(models=two) as url, pytest.raises(ValueError, match=r"give --model \(it serves a, b\)"):
        connect(url, None, None)
    with fake_openai(models=None) as url:  # no /models: the model named is taken, no context known
        served = connect(url, "m", None)
    assert served.model == "m" and served.max_model_len is None
    with pytest.raises(ValueError, match="--tools 'json'"):
        connect("http://127.0.0.1:9/v1", None, None, "json")


def test_an_endpoint_that_keeps_failing_ends_the_episode_as_an_infrastructure_failure(sim):
    with fake_openai([503] * 6) as url:  # the first request and the SDK's 5 retries
        episode = _run(make_policy(f"openai:{url}"), sim)
    assert len(FakeOpenAI.requests) == 6
    assert "HTTP 503" in episode.failure and "after 6 attempts" in episode.failure
    assert [t.action for t in episode.turns] == ["initial"]  # turn 0 kept; nothing scored from the agent


def test_a_refused_request_is_not_retried_and_stops_the_evaluation(sim):
    with fake_openai([401]) as url, pytest.raises(EndpointError, match="HTTP 401"):
        _run(make_policy(f"openai:{url}"), sim)
    assert len(FakeOpenAI.requests) == 1


def test_a_history_that_outgrows_the_served_context_ends_its_episode(sim):
    # the server reports 8,180 prompt tokens for the first reply: 8,200 of 8,192 are then used
    with fake_openai(usage_tokens=8180) as url:
        episode = _run(make_policy(f"openai:{url}"), sim)
    assert episode.cut and not episode.failure and [t.action for t in episode.turns] == ["initial", "call"]
    assert len(FakeOpenAI.requests) == 1  # the second request was never sent
    assert FakeOpenAI.requests[0][2]["max_tokens"] == 1024  # nothing used yet: the policy's own cap

    with fake_openai(usage_tokens=7900) as url:  # 7,920 used: 272 tokens of room left for each next reply
        episode = _run(make_policy(f"openai:{url}"), sim)
    assert not episode.cut and [body["max_tokens"] for _, _, body in FakeOpenAI.requests] == [1024, 272, 272]

    with fake_openai([400]) as url:  # a 400 that names the context length: that case, not a fatal error
        episode = _run(make_policy(f"openai:{url}"), sim)
    assert episode.cut and not episode.failure and [t.action for t in episode.turns] == ["initial"]


def test_context_refusals_are_read_from_their_messages():
    vllm = (
        "This model's maximum context length is 2048 tokens. However, your prompt contains at least 2049 "
        "input tokens, which exceeds this limit even without any output tokens."
    )
    openai = (
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
        "(3100 in the messages, 1900 in the completion)."
    )
    assert names_context(vllm) and names_context(openai) and not names_context("Unknown model")
    assert prompt_tokens_named(vllm) == 2049 and prompt_tokens_named(openai) == 3100
    assert prompt_tokens_named("maximum context length exceeded") is None
