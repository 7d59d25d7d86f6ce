"""One agent turn, the same for evaluation episodes and every rollout plan: parse the reply,
simulate the design it asks for (parameters it omits keep their values), score it against the
query's specs, and say what comes next."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from simworkers.query import Query
from simworkers.result import SimResult
from simworkers.task import Task
from simworkers.validate import InvalidParams, validate_params
from system.agent.episode import Simulate
from system.agent.protocol import ParsedReply, merged_design, parse_reply, tool_message
from system.agent.reward import score_result

EndReward = Literal["history", "own"]
NUDGE = "Reason in <Analyze>...</Analyze>, then call simulate or answer <Design End>."


@dataclass(frozen=True)
class AgentState:
    """Where a conversation stands after some turns; immutable, so branches can share it."""

    current: dict
    last: SimResult
    best: float  # best score in the history, turn 0 included: what <Design End> delivers
    left: int
    own_best: float = 0.0  # best score of the designs the policy simulated itself (turn 0 excluded)

    @classmethod
    def opening(cls, query: Query, first: SimResult, budget: int) -> AgentState:
        """Turn 0: the query's initial design, simulated, with the whole budget ahead."""
        return cls(dict(query.initial), first, score_result(query.specs, first).value, budget)


@dataclass(frozen=True)
class Outcome:
    parsed: ParsedReply
    result: SimResult | None
    score: float
    reward: float
    state: AgentState
    message: tuple[str, str] | None  # (role, text) to append, None when the episode ends
    # a call's design: the numbers simulated, or, refused, what it asked for (its arguments over the
    # current design, as written: "2.5u", out-of-range values)
    design: dict | None = None

    @property
    def ends(self) -> bool:
        return self.message is None


async def take_action(
    task: Task,
    query: Query,
    state: AgentState,
    text: str,
    simulate: Simulate,
    format_penalty: float,
    end_reward: EndReward = "history",
    cut: bool = False,
) -> Outcome:
    """`end_reward`: what a <Design End> earns. "history" (SPEC section 6): the best score in its
    history, the initial design included, which is the design it delivers. "own": the best of the
    designs the policy simulated itself (0 if none), as trajectory-level GRPO scores a trajectory
    and as evaluation's headline metric does; ending before any call then earns nothing.
    `cut`: the reply ran to the token limit without ending its turn, and that breaks the format
    (`algorithm.cut_replies: malformed`); its action still counts as written."""
    parsed = parse_reply(text, task)
    if cut:
        parsed = replace(parsed, errors=(*parsed.errors, "the reply ran to the token limit without ending"))
    penalty = 0.0 if parsed.format_ok else format_penalty
    if parsed.action == "end":
        earned = state.best if end_reward == "history" else state.own_best
        return Outcome(parsed, None, state.best, earned - penalty, state, None)
    if parsed.action == "none":
        nudge = "Your reply was not understood: " + "; ".join(parsed.errors) + ". " + NUDGE
        return Outcome(parsed, None, 0.0, -format_penalty, state, ("user", nudge))
    if state.left <= 0:
        bad = replace(parsed, errors=(*parsed.errors, "tool call past the budget"))
        return Outcome(bad, None, 0.0, -format_penalty, state, None)
    design = merged_design(state.current, parsed.arguments)
    current = state.current  # an invalid design is refused here, at no simulator time
    try:
        values = validate_params(task, design)
    except InvalidParams as exc:
        # a value outside the declared range breaks the format (SPEC section 4): without the
        # penalty, overshooting a range would cost the policy no more than a poor design
        result = SimResult("invalid", {}, str(exc)[:500])
        parsed = replace(parsed, errors=(*parsed.errors, f"design refused: {result.reason}"))
        penalty = format_penalty
    else:
        result = await simulate(task, values)
        current = design = values
    score = score_result(query.specs, result).value
    new_state = AgentState(current, result, max(state.best, score), state.left - 1, max(state.own_best, score))
    message = ("tool", tool_message(task, query, result, new_state.left))
    return Outcome(parsed, result, score, score - penalty, new_state, message, design)
