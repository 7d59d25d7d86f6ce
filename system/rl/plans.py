"""Rollout plans (docs/design.md, "Algorithms"): how each algorithm samples one query into
scored groups.

All four run the one turn loop (system/agent/dialogue.py) and differ only in where samples
start: TL-GRPO branches G actions at every history of one backbone trajectory (the backbone's own
action is one of the G, so a query costs T x G simulations); ST-iter does the same from
query-plus-latest-result prompts; trajectory-level GRPO and GTPO sample G whole trajectories.
Token ids are kept exactly as the engine produced them.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Protocol

from simworkers.query import Query
from simworkers.task import Task
from system.agent.conversation import ChatFormat, Conversation, engine_speaker, token_opener
from system.agent.dialogue import Dialogue, TurnStep, run_turns, take_turn
from system.agent.episode import Simulate
from system.agent.turns import AgentState
from system.config import AlgorithmConfig
from system.rl.buffer import Group, Sample, Segment
from wire.sampling import Generation, Sampling

_group_ids = itertools.count()


class Generator(Protocol):
    version: int

    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation: ...


class Rollout:
    """Runs one algorithm's plan for queries against a generator and a simulator."""

    def __init__(
        self,
        generator: Generator,
        fmt: ChatFormat,
        simulate: Simulate,
        algorithm: AlgorithmConfig,
        sampling: Sampling,
        max_prompt_tokens: int | None = None,
        simulate_urgent: Simulate | None = None,
    ):
        """`simulate_urgent`: for the simulations the rest of the rollout waits on (the initial
        design, TL-GRPO's backbone), e.g. `partial(pool.submit, urgent=True)`."""
        self.simulate = simulate
        self.simulate_urgent = simulate_urgent or simulate
        self.algo, self.max_prompt_tokens = algorithm, max_prompt_tokens
        self.open = token_opener(engine_speaker(generator, sampling), fmt)
        self.cut_histories = 0  # histories that reached max_prompt_tokens and ended there
        self.best_curves: list[list[float]] = []  # per trajectory: best score so far after each turn

    def take_best_curves(self) -> list[list[float]]:
        curves, self.best_curves = self.best_curves, []
        return curves

    async def run(self, task: Task, query: Query) -> list[Group]:
        first = await self.simulate_urgent(task, query.initial)
        state = AgentState.opening(query, first, self.algo.budget)
        if self.algo.name in ("tl_grpo", "single_turn"):
            return await self._turn_level(task, query, state)
        trajectories = await asyncio.gather(
            *(self._trajectory(task, query, state) for _ in range(self.algo.group_size))
        )
        per_turn = self.algo.name == "gtpo"
        return [Group(next(_group_ids), list(trajectories), self.algo.name, per_turn, self.algo.gamma)]

    async def _dialogue(self, task: Task, query: Query, state: AgentState, turn_level: bool, before_turn=None):
        dialogue = await run_turns(
            self.open,
            task,
            query,
            state,
            self.algo.budget,
            self.simulate_urgent if turn_level else self.simulate,  # branches wait on the backbone
            format_penalty=self.algo.format_penalty,
            end_reward=self.algo.end_reward,
            cut_malformed=self.algo.cut_replies == "malformed",
            protocol="st-iter" if self.algo.name == "single_turn" else "multi-turn",
            closing_turn=not turn_level,  # the closing <Design End> is not a tool-call turn
            max_prompt_tokens=self.max_prompt_tokens,
            before_turn=before_turn,
        )
        self.cut_histories += dialogue.cut
        self.best_curves.append(dialogue.best_curve)
        return dialogue

    async def _turn_level(self, task: Task, query: Query, state: AgentState) -> list[Group]:
        """A backbone trajectory; at each tool-call turn, G-1 more actions from the same history."""
        branches: list[list[asyncio.Task]] = []

        def branch(turn: int, conversation: Conversation, at: AgentState) -> None:
            branches.append(
                [
                    asyncio.create_task(
                        take_turn(
                            conversation.fork(),
                            task,
                            query,
                            at,
                            turn,
                            self.simulate,
                            self.algo.format_penalty,
                            self.algo.end_reward,
                            self.algo.cut_replies == "malformed",
                        )
                    )
                    for _ in range(self.algo.group_size - 1)
                ]
            )

        dialogue = await self._dialogue(task, query, state, turn_level=True, before_turn=branch)
        groups = []
        for backbone, extras in zip(dialogue.steps, branches):
            members = [backbone, *await asyncio.gather(*extras)]
            groups.append(Group(next(_group_ids), [_turn_sample(task, query, m) for m in members], self.algo.name))
        return groups

    async def _trajectory(self, task: Task, query: Query, state: AgentState) -> Sample:
        """One whole trajectory as one sample: a segment per action, each with its turn reward;
        for trajectory-level GRPO every segment carries the trajectory reward (best score minus
        the penalty if any turn broke the format)."""
        dialogue: Dialogue = await self._dialogue(task, query, state, turn_level=False)
        all_ok = all(step.outcome.parsed.format_ok for step in dialogue.steps)
        scores = [step.outcome.score for step in dialogue.steps if step.outcome.result is not None]
        best = max(scores, default=0.0)
        trajectory_reward = best - (0.0 if all_ok else self.algo.format_penalty)
        segments = [
            _segment(step, trajectory_reward if self.algo.name == "traj_grpo" else step.outcome.reward)
            for step in dialogue.steps
        ]
        version = dialogue.steps[-1].reply.span.version
        return Sample(dialogue.conversation.ids, segments, task.name, query.seed, best, all_ok, version, 0)


def _segment(step: TurnStep, reward: float) -> Segment:
    span = step.reply.span
    return Segment(span.start, span.end, reward, list(span.logprobs), step.turn)


def _turn_sample(task: Task, query: Query, step: TurnStep) -> Sample:
    """One action after its history: the sample a turn-level group holds."""
    outcome = step.outcome
    return Sample(
        step.ids,
        [_segment(step, outcome.reward)],
        task.name,
        query.seed,
        outcome.score,
        outcome.parsed.format_ok,
        step.reply.span.version,
        step.turn,
    )
