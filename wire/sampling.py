"""A generation request and its answer: what the driver sends a rollout engine and gets back.

Token ids in, token ids out: the engine never sees text, so the ids a learner trains on are the
ids that were sampled.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    ids: list[int]
    logprobs: list[float]  # per sampled token, under the distribution the sampler drew from
    finished: bool  # ended with a stop token (not cut at max_new_tokens)
    version: int = 0  # the weights version that sampled it
