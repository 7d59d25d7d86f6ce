"""The one turn loop. Rollout plans, evaluation policies and the format warm-up all run their
conversations through `run_turns`; TL-GRPO's extra branches take single turns (`take_turn`) from
a fork of the same conversation.

A dialogue opens with the query's first message (the initial design and its result), then each
turn is: the model replies, `take_action` parses, simulates and scores it, and the tool response
(or a nudge) is added. It ends at <Design End>, at a call past the budget, after the closing turn,
or when the history outgrows the prompt cap or a served model's context. ST-iter opens a fresh
conversation every turn from the query and the most recent result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simworkers.query import Query
from simworkers.task import Task
from system.agent.conversation import Conversation, Opener, Reply
from system.agent.endpoint import ContextFull
from system.agent.episode import Protocol, Simulate
from system.agent.protocol import first_message
from system.agent.turns import AgentState, EndReward, Outcome, take_action


@dataclass(frozen=True)
class TurnStep:
    turn: int  # 1-based
    reply: Reply
    outcome: Outcome
    conversation: Conversation
    end: int  # len(conversation.ids) right after the reply

    @property
    def ids(self) -> list[int]:
        """The conversation's token ids up to the end of this reply: a training sample."""
        return self.conversation.ids[: self.end]


@dataclass
class Dialogue:
    steps: list[TurnStep]
    conversation: Conversation  # the last one (ST-iter opens one per turn)
    state: AgentState
    best_curve: list[float]  # best score so far, from turn 0, after each turn that went on
    cut: bool  # stopped because the history outgrew the prompt cap or the served context


async def take_turn(
    conversation: Conversation,
    task: Task,
    query: Query,
    state: AgentState,
    turn: int,
    simulate: Simulate,
    format_penalty: float,
    end_reward: EndReward = "history",
    cut_malformed: bool = False,
) -> TurnStep:
    """`cut_malformed`: a reply cut at the token limit breaks the format (training only)."""
    reply = await conversation.reply(state)
    cut = cut_malformed and reply.cut
    outcome = await take_action(task, query, state, reply.text, simulate, format_penalty, end_reward, cut)
    return TurnStep(turn, reply, outcome, conversation, len(conversation.ids))


async def run_turns(
    open_conversation: Opener,
    task: Task,
    query: Query,
    state: AgentState,
    budget: int,
    simulate: Simulate,
    *,
    format_penalty: float = 0.0,
    end_reward: EndReward = "history",
    cut_malformed: bool = False,
    protocol: Protocol = "multi-turn",
    closing_turn: bool = True,
    max_prompt_tokens: int | None = None,
    before_turn: Callable[[int, Conversation, AgentState], None] | None = None,
) -> Dialogue:
    """`closing_turn`: also ask for the answer after the budget is spent (trajectories and
    evaluation do; TL-GRPO's backbone stops there, the closing turn being no tool-call turn).
    `before_turn(turn, conversation, state)` runs before each reply, while the conversation
    holds exactly the history of that turn."""
    conversation = open_conversation(task, first_message(task, query, budget, state.current, state.last))
    steps: list[TurnStep] = []
    curve, cut = [state.best], False
    for turn in range(1, budget + 2):  # budget calls and the closing <Design End>
        if not closing_turn and state.left <= 0:
            break
        if protocol == "st-iter" and turn > 1:
            text = first_message(task, query, budget, state.current, state.last, turns_left=state.left)
            conversation = open_conversation(task, text)
        if before_turn is not None:
            before_turn(turn, conversation, state)
        try:
            step = await take_turn(
                conversation, task, query, state, turn, simulate, format_penalty, end_reward, cut_malformed
            )
        except ContextFull:  # a served model's context is full: the episode ends here, as at the prompt cap
            cut = True
            break
        steps.append(step)
        if step.outcome.ends:
            break
        conversation.add(*step.outcome.message)
        state = step.outcome.state
        curve.append(state.best)
        if protocol == "multi-turn" and max_prompt_tokens is not None and len(conversation.ids) > max_prompt_tokens:
            cut = True
            break
    return Dialogue(steps, conversation, state, curve, cut)
