"""Whatever a model writes, the parser and validation never raise: over 100k generated replies
(arbitrary text, mutated valid calls, JSON numbers of every size and form, deep nesting, NUL and
lone surrogates, keys that are not parameters, megabyte replies) each reply ends as a call, an end
or nothing with its errors, and only numbers formatted by tl-grpo reach a netlist."""

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simworkers.catalog import load_task
from simworkers.deck import param_lines
from simworkers.validate import InvalidParams, validate_params
from system.agent.protocol import merged_design, parse_reply

TASK = load_task("ota5t_generic")
NUMBER_LINE = re.compile(r"^\.param [a-z_][a-z0-9_]*=-?\d+(\.\d+)?(e[-+]\d+)?$")  # repr of a finite float
pytestmark = pytest.mark.slow  # about three minutes: 100,000 replies
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(reply) -> None:
    """The property: no exception, a known action, and a design that is either refused with its
    reasons or made only of finite in-range floats, written as plain numbers."""
    parsed = parse_reply(reply, TASK)
    assert parsed.action in ("call", "end", "none")
    assert parsed.format_ok == (bool(parsed.analysis) and parsed.action != "none" and not parsed.errors)
    if parsed.action != "call":
        return
    try:
        values = validate_params(TASK, merged_design(TASK.reference(), parsed.arguments))
    except InvalidParams as exc:
        assert exc.problems
        return
    for name, value in values.items():
        p = TASK.param(name)
        assert isinstance(value, float) and p.lo <= value <= p.hi
    for line in param_lines(values):
        assert NUMBER_LINE.match(line), line


def call(arguments) -> str:
    return "<Analyze>x</Analyze><tool_call>" + json.dumps({"name": "simulate", "arguments": arguments}) + "</tool_call>"


json_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(lambda d: int("9" * d), st.integers(300, 4000)),
)
number_texts = st.one_of(
    st.from_regex(
        r"-?\d{1,5}(\.\d{0,5})?([eE][-+]?\d{1,4})?\s?(f|p|n|u|µ|m|k|meg|g|t)?\s?(m|A|F|V|Ohm|ohm|Hz)?", fullmatch=True
    ),
    st.sampled_from(["NaN", "nan", "Infinity", "-inf", "1e999", "-0", "0x10", "1_000", "2.5u\n.control", "1;shell"]),
)
values = st.one_of(json_numbers, number_texts, st.text(max_size=30), st.none(), st.booleans())
arguments = st.dictionaries(
    st.sampled_from([*TASK.param_names, "vdd", "W1", "", "a" * 50]) | st.text(max_size=10), values, max_size=8
)
characters = st.characters(codec=None, categories=None)  # lone surrogates and NUL included


@given(st.text(alphabet=characters, max_size=400))
@settings(FAST, max_examples=30_000)
def test_arbitrary_text(reply):
    check(reply)


@given(arguments)
@settings(FAST, max_examples=30_000)
def test_calls_with_any_keys_and_values(args):
    check(call(args))


@given(arguments, st.lists(st.tuples(st.integers(0, 10_000), st.text(alphabet=characters, max_size=3)), max_size=6))
@settings(FAST, max_examples=30_000)
def test_mutated_valid_calls(args, edits):
    text = call(args)
    for position, insert in edits:  # insert, or cut one character where the insert is empty
        k = position % (len(text) + 1)
        text = text[:k] + insert + text[k + (0 if insert else 1) :]
    check(text)


@given(st.integers(1, 3000), st.sampled_from(["[", "{", '{"a":', "[[{"]))
@settings(FAST, max_examples=10_000)
def test_deep_nesting(depth, opener):
    nested = '{"name": "simulate", "arguments": {"w_in": ' + opener * depth + "}}"
    check(f"<Analyze>x</Analyze><tool_call>{nested}</tool_call>")
    check(f"<Analyze>x</Analyze>```json\n{nested}\n```")


@pytest.mark.parametrize(
    "reply",
    [
        "x" * 2_000_000,
        call({"w_in": "1" * 1_000_000}),
        "<Analyze>" + "a" * 1_000_000 + "</Analyze><Design End>",
        "<tool_call>" * 200_000,
        call({"w_in": int("1" + "0" * 4000)}),
        '<Analyze>a</Analyze><tool_call>{"name": "simulate", "arguments": {"w_in": 1' + "0" * 50_000 + "}}</tool_call>",
        "\x00" * 1000 + call({"w_in": "25u\x00"}),
        call({"w_in": "\ud800"}),
    ],
    ids=["2MB text", "1MB value", "1MB analysis", "many tags", "4000-digit int", "50000-digit int", "NUL", "surrogate"],
)
def test_megabyte_and_odd_replies(reply):
    check(reply)
