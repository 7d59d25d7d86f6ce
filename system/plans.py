"""Rollout plans (SPEC section 6): how each algorithm samples one query into scored groups.

All four share `take_action` (parse, simulate, score, reward) and differ only in where samples
start: TL-GRPO branches G actions at every history of one backbone trajectory (the backbone's own
action is one of the G, so a query costs T x G simulations); ST-iter does the same from
query-plus-latest-result prompts; trajectory-level GRPO and GTPO sample G whole trajectories.
Token ids are kept exactly as the engine produced them.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from actors.hf_engine import Generation, Sampling
from simworkers.query import Query
from simworkers.task import Task
from system.buffer import Group, Sample, Segment
from system.chat import ChatFormat
from system.episode import Simulate
from system.protocol import first_message, tool_schema
from system.reward import score_result
from system.turns import AgentState, Outcome, take_action

Algorithm = Literal["tl_grpo", "traj_grpo", "single_turn", "gtpo"]
_group_ids = itertools.count()


class Generator(Protocol):
    version: int

    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation: ...


@dataclass(frozen=True)
class PlanConfig:
    algorithm: Algorithm = "tl_grpo"
    group_size: int = 8
    budget: int = 5
    format_penalty: float = 0.5
    gamma: float = 0.9
    sampling: Sampling = field(default_factory=Sampling)
    max_prompt_tokens: int | None = None  # a longer history is not continued (SPEC: 15,000)


@dataclass
class _Drawn:
    sample: Sample
    outcome: Outcome
    generation: Generation


class Rollout:
    """Runs one algorithm's plan for queries against a generator and a simulator."""

    def __init__(self, generator: Generator, fmt: ChatFormat, simulate: Simulate, cfg: PlanConfig):
        self.gen, self.fmt, self.simulate, self.cfg = generator, fmt, simulate, cfg
        self.cut_histories = 0  # histories that reached max_prompt_tokens and ended there
        self.best_curves: list[list[float]] = []  # per trajectory: best score so far after each turn

    def take_best_curves(self) -> list[list[float]]:
        curves, self.best_curves = self.best_curves, []
        return curves

    def _too_long(self, history: list[int]) -> bool:
        cap = self.cfg.max_prompt_tokens
        if cap is not None and len(history) > cap:
            self.cut_histories += 1
            return True
        return False

    async def run(self, task: Task, query: Query) -> list[Group]:
        first = await self.simulate(task, query.initial)
        state = AgentState(dict(query.initial), first, score_result(query.specs, first).value, self.cfg.budget)
        if self.cfg.algorithm in ("tl_grpo", "single_turn"):
            return await self._turn_level(task, query, state)
        trajectories = await asyncio.gather(*(self._trajectory(task, query, state) for _ in range(self.cfg.group_size)))
        per_turn = self.cfg.algorithm == "gtpo"
        return [Group(next(_group_ids), list(trajectories), self.cfg.algorithm, per_turn, self.cfg.gamma)]

    def _prompt(self, task: Task, query: Query, state: AgentState, fresh: bool) -> list[int]:
        turns_left = state.left if fresh else None
        text = first_message(task, query, self.cfg.budget, state.current, state.last, turns_left=turns_left)
        return self.fmt.prompt_ids(text, [tool_schema(task)])

    async def _draw(self, task: Task, query: Query, history: list[int], state: AgentState, turn: int) -> _Drawn:
        generation = await self.gen.generate(history, self.cfg.sampling)
        text = self.fmt.tokenizer.decode(generation.ids, skip_special_tokens=True)
        outcome = await take_action(task, query, state, text, self.simulate, self.cfg.format_penalty)
        ids = history + generation.ids
        segment = Segment(len(history), len(ids), outcome.reward, list(generation.logprobs), turn)
        sample = Sample(
            ids,
            [segment],
            task.name,
            query.seed,
            outcome.score,
            outcome.parsed.format_ok,
            getattr(generation, "version", self.gen.version),
            turn,
        )
        return _Drawn(sample, outcome, generation)

    def _continue(self, history: list[int], drawn: _Drawn) -> list[int]:
        ids = history + drawn.generation.ids
        if not drawn.generation.finished:
            ids.append(self.fmt.stop_id)
        role, text = drawn.outcome.message
        return ids + self.fmt.message_ids(role, text)

    async def _turn_level(self, task: Task, query: Query, state: AgentState) -> list[Group]:
        """A backbone trajectory; at each tool-call turn, G-1 more actions from the same history."""
        fresh = self.cfg.algorithm == "single_turn"
        history = self._prompt(task, query, state, fresh=False)
        pending: list[tuple[_Drawn, list[asyncio.Task]]] = []
        curve = [state.best]
        for turn in range(1, self.cfg.budget + 2):
            if state.left <= 0:
                break  # budget spent: the closing <Design End> is not a tool-call turn
            if fresh and turn > 1:
                history = self._prompt(task, query, state, fresh=True)
            extras = [
                asyncio.create_task(self._draw(task, query, list(history), state, turn))
                for _ in range(self.cfg.group_size - 1)
            ]
            backbone = await self._draw(task, query, list(history), state, turn)
            pending.append((backbone, extras))
            if backbone.outcome.ends:
                break
            curve.append(backbone.outcome.state.best)
            history = self._continue(history, backbone)
            state = backbone.outcome.state
            if not fresh and self._too_long(history):
                break
        self.best_curves.append(curve)
        groups = []
        for backbone, extras in pending:
            members = [backbone, *await asyncio.gather(*extras)]
            groups.append(Group(next(_group_ids), [m.sample for m in members], self.cfg.algorithm))
        return groups

    async def _trajectory(self, task: Task, query: Query, state: AgentState) -> Sample:
        """One whole trajectory as one sample: a segment per action, each with its turn reward;
        the trajectory reward (best score minus a penalty if any turn broke the format) leads."""
        ids = self._prompt(task, query, state, fresh=False)
        segments, scores, all_ok, version = [], [], True, self.gen.version
        curve = [state.best]
        for turn in range(1, self.cfg.budget + 2):
            drawn = await self._draw(task, query, list(ids), state, turn)
            segments.append(drawn.sample.segments[0])
            version = drawn.sample.policy_version
            all_ok &= drawn.outcome.parsed.format_ok
            if drawn.outcome.result is not None:
                scores.append(drawn.outcome.score)
            if drawn.outcome.ends:
                ids = drawn.sample.ids
                break
            ids = self._continue(ids, drawn)
            state = drawn.outcome.state
            curve.append(state.best)
            if self._too_long(ids):
                break
        self.best_curves.append(curve)
        best = max(scores, default=0.0)
        if self.cfg.algorithm == "traj_grpo":
            reward = best - (0.0 if all_ok else self.cfg.format_penalty)
            segments = [replace(seg, reward=reward) for seg in segments]
        return Sample(ids, segments, task.name, query.seed, best, all_ok, version, 0)
