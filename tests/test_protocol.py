"""The agent protocol: the parser on fuzz and on what real models write; prompts from a real
chat template; token ids kept end to end."""

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simworkers.catalog import load_task
from simworkers.query import near_reference_query
from simworkers.result import SimResult
from system.agent.protocol import first_message, parse_reply, tool_message, tool_schema

TASK = load_task("ota5t_generic")
FRAGMENTS = [
    "<Analyze>",
    "</Analyze>",
    "<tool_call>",
    "</tool_call>",
    "<think>",
    "</think>",
    "<Design End>",
    '{"name": "simulate", "arguments": {',
    '"w_in": "2.5u"',
    "}",
    "}}",
    "```json",
    "```",
    "'",
    '"',
    "\n",
]


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_parser_never_raises_on_any_text(text):
    reply = parse_reply(text, TASK)
    assert reply.action in ("call", "end", "none")
    assert reply.format_ok == (bool(reply.analysis) and reply.action != "none" and not reply.errors)


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=25))
@settings(max_examples=400)
def test_parser_never_raises_on_tag_soup(parts):
    parse_reply("".join(parts), TASK)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["list"], "x" * 300_000])
def test_parser_on_non_text_and_huge(bad):
    assert parse_reply(bad, TASK).action in ("none", "call", "end")


CALL = '<tool_call>{"name": "simulate", "arguments": {"w_in": "25u", "ibias": "12 uA"}}</tool_call>'


@pytest.mark.parametrize("digits", [400, 5000, 30000])
def test_an_integer_of_any_length_is_a_refused_design_not_a_crash(digits):
    """JSON allows integers of any size; past float range, or past the 4,300 digits that int()
    takes from text, the reply still parses (or fails to) and the design is refused, with the
    parameter named."""
    import asyncio

    from simworkers.query import near_reference_query
    from system.agent.turns import AgentState, take_action

    text = (
        '<Analyze>a</Analyze><tool_call>{"name": "simulate", "arguments": {"w_in": 1' + "0" * digits + "}}</tool_call>"
    )
    parsed = parse_reply(text, TASK)
    assert parsed.action in ("call", "none")

    async def never(task, params):
        raise AssertionError("a refused design reached the simulator")

    query = near_reference_query(TASK, 0)
    state = AgentState(dict(query.initial), SimResult("ok", {}), 0.0, 3)
    outcome = asyncio.run(take_action(TASK, query, state, text, never, 0.5))
    if parsed.action == "call":
        assert outcome.result.status == "invalid" and "w_in" in outcome.result.reason


@pytest.mark.parametrize(
    ("reply", "action", "ok", "args"),
    [
        (f"<Analyze>More gm.</Analyze>\n{CALL}", "call", True, {"w_in": "25u", "ibias": "12 uA"}),
        (f"<think>\nlet me think... </think>\n<Analyze>x</Analyze>{CALL}", "call", True, {"w_in": "25u"}),
        (
            '<Analyze>x</Analyze>\n<tool_call>\n```json\n{"name": "simulate", "arguments": {"l_in": 1e-6}}\n```\n'
            "</tool_call>",
            "call",
            True,
            {"l_in": 1e-6},
        ),
        (
            '<Analyze>x</Analyze>\n```json\n{"name": "simulate", "arguments": {"l_in": 2e-6}}\n```',
            "call",
            True,
            {"l_in": 2e-6},
        ),
        (
            "<analyze>x</analyze><tool_call>{'name': 'simulate', 'arguments': {'w_in': 3e-05}}</tool_call>",
            "call",
            True,
            {"w_in": 3e-05},
        ),
        (
            '<Analyze>x</Analyze><tool_call>{"name": "simulate", "arguments": "{\\"w_in\\": 4e-5}"}</tool_call>',
            "call",
            True,
            {"w_in": 4e-5},
        ),
        ("<Analyze>All specs met.</Analyze>\n<Design End>", "end", True, {}),
        ("<Analyze>done</Analyze> <design_end>", "end", True, {}),
        (CALL, "call", False, {"w_in": "25u"}),  # no analysis
        (f"<Analyze>x</Analyze>{CALL}{CALL}", "call", False, {"w_in": "25u"}),  # two calls
        (
            '<Analyze>x</Analyze><tool_call>{"name": "simulate", "arguments": {"W_IN": 1}}</tool_call>',
            "call",
            False,
            {"W_IN": 1},
        ),
        ('<Analyze>x</Analyze><tool_call>{"name": "optimize", "arguments": {}}</tool_call>', "call", False, {}),
        ("<Analyze>x</Analyze><tool_call>{not json</tool_call>", "none", False, {}),
        ("<Analyze>I will try something.</Analyze>", "none", False, {}),
        ("", "none", False, {}),
    ],
)
def test_realistic_replies(reply, action, ok, args):
    parsed = parse_reply(reply, TASK)
    assert parsed.action == action
    assert parsed.format_ok is ok, parsed.errors
    for key, value in args.items():
        assert parsed.arguments[key] == value


def test_errors_name_the_problem():
    parsed = parse_reply(
        '<Analyze>x</Analyze><tool_call>{"name": "simulate", "arguments": {"bogus": 1}}</tool_call>', TASK
    )
    assert any("unknown parameters: bogus" in e for e in parsed.errors)
    assert "no <Analyze>" in parse_reply(CALL, TASK).errors[0]


def test_first_message_holds_everything_the_spec_lists():
    query = near_reference_query(TASK, 3)
    result = SimResult("ok", {"gain_db": 30.0, "ugf": 1e6, "pm": 70.0, "power": 1e-5})
    text = first_message(TASK, query, 5, query.initial, result)
    assert TASK.description[:40] in text
    for p in TASK.params:
        assert f"- {p.name} (" in text
    for metric in ("gain_db >=", "ugf >=", "pm >=", "power <="):
        assert metric in text
    assert "Initial design (turn 0)" in text and "Budget: you may call `simulate` 5 more times" in text
    assert "<Analyze>" in text and "<Design End>" in text and "score:" in text
    assert "Netlist" not in text  # show_netlist is off for this task
    assert "budget is spent" in tool_message(TASK, query, result, 0)
    assert "Simulations left: 2" in tool_message(TASK, query, result, 2)


def test_tool_schema_declares_every_parameter():
    schema = tool_schema(TASK)
    assert schema["function"]["name"] == "simulate"
    assert set(schema["function"]["parameters"]["properties"]) == set(TASK.param_names)
    json.dumps(schema)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from system.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_prompt_uses_the_models_chat_template(tiny):
    from transformers import AutoTokenizer

    from system.agent.conversation import ChatFormat

    tok = AutoTokenizer.from_pretrained(tiny)
    fmt = ChatFormat(tok)
    query = near_reference_query(TASK, 1)
    message = first_message(TASK, query, 5, query.initial, SimResult("failed", {}, "no convergence"))
    ids = fmt.prompt_ids(message, [tool_schema(TASK)])
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>system") and '"name": "simulate"' in text
    assert message in text and text.endswith("<|im_start|>assistant\n")


class ScriptedEngine:
    """Returns fixed token ids: lets a test see exactly what the session keeps."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.prompts = []

    def generate(self, prompt_ids, sampling):
        from wire.sampling import Generation

        self.prompts.append(list(prompt_ids))
        ids = self.replies.pop(0)
        return Generation(ids, [-0.5] * len(ids), finished=True)


def test_token_session_keeps_sampled_ids_and_appends_tool_ids(tiny):
    from transformers import AutoTokenizer

    from system.agent.conversation import ChatFormat, TokenConversation, engine_speaker
    from wire.sampling import Sampling

    tok = AutoTokenizer.from_pretrained(tiny)
    fmt = ChatFormat(tok)
    reply_ids = [*tok.encode(f"<Analyze>a</Analyze>{CALL}", add_special_tokens=False), fmt.stop_id]
    engine = ScriptedEngine([reply_ids, reply_ids])
    prompt = fmt.prompt_ids("hello", [tool_schema(TASK)])
    session = TokenConversation(engine_speaker(engine, Sampling()), fmt, list(prompt))
    reply = asyncio.run(session.reply(None))
    assert "<tool_call>" in reply.text
    session.add("tool", "RESULT")
    asyncio.run(session.reply(None))
    tool_ids = tok.encode(
        "\n<|im_start|>user\n<tool_response>\nRESULT\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
        add_special_tokens=False,
    )
    assert session.ids == prompt + reply_ids + tool_ids + reply_ids
    assert engine.prompts[1] == prompt + reply_ids + tool_ids  # the engine saw ids, never re-tokenised text
    second = len(prompt) + len(reply_ids) + len(tool_ids)  # the sampled tokens' spans, and only they
    assert [(s.start, s.end) for s in session.spans] == [
        (len(prompt), len(prompt) + len(reply_ids)),
        (second, second + len(reply_ids)),
    ]
    assert all(s.logprobs == [-0.5] * len(reply_ids) for s in session.spans)
    # the same conversation rendered as text by the template tokenises to the same ids
    rendered = tok.apply_chat_template(
        [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": f"<Analyze>a</Analyze>{CALL}"},
            {"role": "tool", "content": "RESULT"},
        ],
        tools=[tool_schema(TASK)],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert tok.decode(session.ids[: len(prompt) + len(reply_ids) + len(tool_ids)]) == rendered
