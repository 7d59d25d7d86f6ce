"""Policies behind one interface: random search, Bayesian optimisation, and language models.

Every policy runs an episode: it starts from the query's simulated initial design and proposes at
most `budget` more designs through `simulate`. Language models talk through a `ChatSession`
(token ids for local models, messages for OpenAI-compatible servers), so one loop serves both.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from simworkers.query import Query, random_design
from simworkers.task import Task
from system.episode import Episode, Protocol, Simulate, Turn, start_episode
from system.protocol import first_message
from system.reward import score_result
from system.turns import AgentState, take_action


class Policy(ABC):
    name: str
    uses_protocol = False  # only language models read prompts; the others run once per query

    @abstractmethod
    async def run(self, task: Task, query: Query, protocol: Protocol, budget: int, simulate: Simulate) -> Episode:
        """Run one episode; the budget counts simulations after the initial design."""


def _rng(policy: str, query: Query) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(policy.encode()), zlib.crc32(query.task.encode()), query.seed])


async def _simulated_turn(task: Task, query: Query, index: int, design: dict, simulate: Simulate) -> Turn:
    result = await simulate(task, design)
    return Turn(index, "call", dict(design), result, score_result(query.specs, result).value)


class RandomSearch(Policy):
    """`budget` designs drawn uniformly (in each parameter's scale) inside the ranges."""

    name = "random"

    async def run(self, task, query, protocol, budget, simulate):
        episode = await start_episode(task, query, self.name, protocol, budget, simulate)
        rng = _rng(self.name, query)
        for k in range(1, budget + 1):
            episode.turns.append(await _simulated_turn(task, query, k, random_design(task, rng), simulate))
        return episode


class BayesOpt(Policy):
    """Gaussian-process Bayesian optimisation (the `bayesian-optimization` package): the initial
    design is its first observation, then exactly `budget` suggestions. Log-scale parameters are
    searched in log10 space."""

    name = "bo"

    async def run(self, task, query, protocol, budget, simulate):
        from bayes_opt import BayesianOptimization

        episode = await start_episode(task, query, self.name, protocol, budget, simulate)
        bounds = {
            p.name: (math.log10(p.lo), math.log10(p.hi)) if p.scale == "log" else (p.lo, p.hi) for p in task.params
        }

        def to_space(design: dict) -> dict:
            return {p.name: math.log10(design[p.name]) if p.scale == "log" else design[p.name] for p in task.params}

        def from_space(point: dict) -> dict:
            design = {}
            for p in task.params:
                value = 10 ** float(point[p.name]) if p.scale == "log" else float(point[p.name])
                design[p.name] = min(p.hi, max(p.lo, value))
            return design

        seed = int(_rng(self.name, query).integers(2**31 - 1))
        optimizer = BayesianOptimization(
            f=None, pbounds=bounds, random_state=seed, verbose=0, allow_duplicate_points=True
        )
        optimizer.register(params=to_space(query.initial), target=episode.initial_score)
        for k in range(1, budget + 1):
            point = await asyncio.to_thread(optimizer.suggest)  # GP fit: keep the event loop free
            turn = await _simulated_turn(task, query, k, from_space(point), simulate)
            episode.turns.append(turn)
            optimizer.register(params=point, target=turn.score)
        return episode


class ChatSession(ABC):
    """One conversation with a model. Token sessions keep `ids` end to end."""

    ids: list[int]

    @abstractmethod
    async def reply(self) -> str:
        """Generate the next assistant reply and keep it in the conversation."""

    @abstractmethod
    def add_tool_result(self, text: str) -> None: ...

    @abstractmethod
    def add_user(self, text: str) -> None: ...


SessionFactory = Callable[[Task, str], ChatSession]


class LLMPolicy(Policy):
    """A language model agent: multi-turn (full history) or ST-iter (query + latest result)."""

    uses_protocol = True

    def __init__(self, name: str, new_session: SessionFactory):
        self.name, self.new_session = name, new_session

    async def run(self, task, query, protocol, budget, simulate):
        episode = await start_episode(task, query, self.name, protocol, budget, simulate)
        start = episode.turns[0]
        state = AgentState(dict(query.initial), start.result, start.score, budget)
        session = self.new_session(task, first_message(task, query, budget, state.current, state.last))
        for index in range(1, budget + 2):  # budget calls and the closing <Design End>
            if protocol == "st-iter" and index > 1:
                text = first_message(task, query, budget, state.current, state.last, turns_left=state.left)
                session = self.new_session(task, text)
            begin = len(session.ids)
            reply = await session.reply()
            # evaluation never applies the format penalty
            outcome = await take_action(task, query, state, reply, simulate, format_penalty=0.0)
            parsed = outcome.parsed
            action = "over_budget" if parsed.action == "call" and outcome.result is None else parsed.action
            episode.turns.append(
                Turn(
                    index,
                    action,
                    outcome.design,
                    outcome.result,
                    outcome.score,
                    parsed.format_ok,
                    list(parsed.errors),
                    reply,
                    (begin, len(session.ids)) if session.ids else None,
                )
            )
            if outcome.ends:
                break
            role, message = outcome.message
            (session.add_tool_result if role == "tool" else session.add_user)(message)
            state = outcome.state
        if protocol == "multi-turn":
            episode.ids = list(session.ids)
        return episode


def make_policy(spec: str, **options) -> Policy:
    """`random`, `bo`, `hf:PATH` (a local Hugging Face model), or `openai:BASE_URL` with
    options model= (and api_key_env=)."""
    if spec == "random":
        return RandomSearch()
    if spec == "bo":
        return BayesOpt()
    kind, _, target = spec.partition(":")
    if kind == "hf" and target:
        from system.chat import hf_session_factory

        return LLMPolicy(f"hf:{target}", hf_session_factory(target, **options))
    if kind == "openai" and target:
        from system.chat import openai_session_factory

        factory = openai_session_factory(target, **options)
        return LLMPolicy(f"openai:{options.get('model') or 'default'}", factory)
    raise ValueError(f"unknown policy {spec!r}: use random, bo, hf:PATH or openai:BASE_URL")
