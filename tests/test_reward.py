import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simworkers.result import SimResult
from simworkers.task import Spec
from system.agent.reward import score_metrics, score_result, shortfall, spec_score

params = st.tuples(st.floats(0.01, 0.2), st.floats(0.25, 2.0), st.floats(0.01, 0.3)).filter(
    lambda p: 2 * p[2] * (p[1] - p[0]) <= 3 * p[0] * (1 - p[2])  # the allowed region (task check)
)


@given(st.floats(-10, 10), params)
def test_in_unit_interval(d, p):
    assert 0.0 <= spec_score(d, *p) <= 1.0


@given(st.floats(-10, 0))
def test_one_when_met(d):
    assert spec_score(d) == 1.0


@given(st.floats(0, 5), st.floats(0, 5), params)
def test_non_increasing(d1, d2, p):
    lo, hi = sorted((d1, d2))
    assert spec_score(hi, *p) <= spec_score(lo, *p) + 1e-12


@pytest.mark.parametrize("p", [(0.05, 0.5, 0.1), (0.1, 1.0, 0.2), (0.02, 0.3, 0.05)])
def test_value_and_slope_continuous_at_every_boundary(p):
    alpha, beta, c = p
    h = 1e-7
    for x in (0.0, alpha, beta):
        left, right = spec_score(x - h, *p), spec_score(x + h, *p)
        assert abs(left - right) < 1e-5
        slope_left = (spec_score(x - h, *p) - spec_score(x - 2 * h, *p)) / h
        slope_right = (spec_score(x + 2 * h, *p) - spec_score(x + h, *p)) / h
        assert abs(slope_left - slope_right) < 1e-3 * max(1.0, abs(slope_left))
    assert spec_score(alpha, *p) == pytest.approx(1 - c)
    assert spec_score(beta, *p) == 0.0


def test_shortfall_per_kind():
    assert shortfall(Spec("g", "min", 40.0, None), 36.0) == pytest.approx(0.1)
    assert shortfall(Spec("g", "min", 40.0, None), 44.0) < 0
    assert shortfall(Spec("p", "max", None, 1e-3), 1.5e-3) == pytest.approx(0.5)
    assert shortfall(Spec("v", "range", 1.0, 2.0), 2.5) == pytest.approx(0.5)
    assert shortfall(Spec("v", "range", 1.0, 2.0), 1.5) < 0
    assert shortfall(Spec("p", "max", None, 1e-3, log=True), 2e-3) == pytest.approx(math.log(2))
    assert shortfall(Spec("f", "min", 1e6, None, log=True), -1.0) == math.inf
    assert shortfall(Spec("g", "min", 40.0, None, scale=10.0), 35.0) == pytest.approx(0.5)
    assert shortfall(Spec("g", "min", 40.0, None), math.nan) == math.inf


def test_geometric_mean_and_zero_rules():
    specs = (Spec("a", "min", 1.0, None), Spec("b", "max", None, 1.0))
    s_a = spec_score(0.02)
    assert score_metrics(specs, {"a": 0.98, "b": 0.5}).value == pytest.approx(math.sqrt(s_a * 1.0))
    assert score_metrics(specs, {"a": 0.1, "b": 0.5}).value == 0.0  # one spec at 0: all 0
    assert score_metrics(specs, {"b": 0.5}).value == 0.0  # unmeasured metric
    ok = SimResult("ok", {"a": 2.0, "b": 0.5})
    assert score_result(specs, ok).value == 1.0
    for status in ("failed", "timeout", "invalid"):
        assert score_result(specs, SimResult(status, {"a": 2.0, "b": 0.5})).value == 0.0


def test_format_penalty_only_when_asked(sim):
    """A turn's training reward is its score minus the penalty when it breaks the format; with
    no penalty (evaluation) it is the score."""
    import asyncio

    from simworkers.catalog import load_task
    from simworkers.query import near_reference_query
    from system.agent.turns import AgentState, take_action

    task = load_task("ota5t_generic")
    query = near_reference_query(task, 3)
    state = AgentState.opening(query, asyncio.run(sim(task, query.initial)), 3)
    call = '<tool_call>{"name": "simulate", "arguments": {"w_in": "40u"}}</tool_call>'

    def reward(text, penalty):
        return asyncio.run(take_action(task, query, state, text, sim, penalty))

    ok, bare = reward(f"<Analyze>a</Analyze>{call}", 0.5), reward(call, 0.5)  # no <Analyze>: a format error
    assert ok.design["w_in"] == pytest.approx(40e-6)  # the numbers simulated, not the reply's text
    assert all(isinstance(v, float) for v in ok.design.values())
    assert ok.reward == ok.score and bare.score == ok.score
    assert bare.reward == pytest.approx(bare.score - 0.5)
    assert reward(call, 0.2).reward == pytest.approx(bare.score - 0.2)
    assert reward(call, 0.0).reward == bare.score
    assert reward("no idea", 0.5).reward == -0.5
    # a design the tool refuses (a value outside its declared range) breaks the format too
    over = '<Analyze>a</Analyze><tool_call>{"name": "simulate", "arguments": {"w_in": "1"}}</tool_call>'
    refused = reward(over, 0.5)
    assert refused.result.status == "invalid" and refused.score == 0.0 and refused.reward == -0.5
    assert refused.design["w_in"] == "1"  # a refused design is kept as asked
    assert not refused.parsed.format_ok and any("w_in" in e for e in refused.parsed.errors)
    assert reward(over, 0.0).reward == 0.0  # evaluation: no penalty


def test_design_end_earns_the_history_best_or_the_policys_own(sim):
    """By default a <Design End> earns the best score in its history, the initial design included
    (SPEC section 6); with end_reward "own" only the designs the policy simulated count, so ending
    before any call earns 0, and after a call it earns that call's score even when the initial
    design was better."""
    import asyncio

    from simworkers.catalog import load_task
    from simworkers.query import near_reference_query
    from system.agent.turns import AgentState, take_action

    task = load_task("ota5t_generic")
    query = near_reference_query(task, 3)
    opening = AgentState.opening(query, asyncio.run(sim(task, query.initial)), 3)
    initial = replace(opening, best=0.9)  # a good initial design, whatever this query's is
    end = "<Analyze>done</Analyze><Design End>"

    def act(state, text, end_reward):
        return asyncio.run(take_action(task, query, state, text, sim, 0.5, end_reward))

    assert act(initial, end, "history").reward == 0.9
    assert act(initial, end, "own").reward == 0.0
    assert act(initial, end, "own").score == 0.9  # the design delivered is still the history's best
    assert act(initial, "<Design End>", "own").reward == -0.5  # no <Analyze>: the penalty still applies
    call = '<Analyze>a</Analyze><tool_call>{"name": "simulate", "arguments": {"w_in": "40u"}}</tool_call>'
    after = act(initial, call, "own")
    assert after.state.own_best == after.score and after.state.best == max(0.9, after.score)
    assert act(after.state, end, "own").reward == after.score
    assert act(after.state, end, "history").reward == max(0.9, after.score)


def test_a_reply_cut_at_the_token_limit_breaks_the_format_only_where_the_algorithm_says(sim):
    """algorithm.cut_replies: malformed charges a reply that ran to max_new_tokens without ending
    its turn the format penalty; its action (an end, a call) still counts as written."""
    import asyncio

    from simworkers.catalog import load_task
    from simworkers.query import near_reference_query
    from system.agent.turns import AgentState, take_action

    task = load_task("ota5t_generic")
    query = near_reference_query(task, 3)
    state = replace(AgentState.opening(query, asyncio.run(sim(task, query.initial)), 3), best=0.9)
    end = "<Analyze>done</Analyze><Design End> and then the reply goes on and on"
    call = '<Analyze>a</Analyze><tool_call>{"name": "simulate", "arguments": {"w_in": "40u"}}</tool_call> more'

    def act(text, cut):
        return asyncio.run(take_action(task, query, state, text, sim, 0.5, "history", cut))

    assert act(end, False).reward == 0.9 and act(end, False).parsed.format_ok
    cut_end = act(end, True)
    assert cut_end.ends and cut_end.reward == pytest.approx(0.9 - 0.5) and not cut_end.parsed.format_ok
    assert "the reply ran to the token limit without ending" in cut_end.parsed.errors
    cut_call = act(call, True)
    assert cut_call.result.ok and cut_call.design["w_in"] == pytest.approx(40e-6)  # simulated as written
    assert cut_call.reward == pytest.approx(cut_call.score - 0.5)
