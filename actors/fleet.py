"""The rollout fleet: every rollout actor behind one `generate`, and the weights they serve.

Requests go to the actor with the fewest in flight. Weights are versioned: `set_weights` hands
one object-store reference to every actor. An actor that died is restarted by Ray with the
base weights; the first answer it gives from weights older than the staleness bound allows
sends it the current ones, and the request is sampled again, so no stale sample gets through.
"""

from __future__ import annotations

import asyncio

from actors.hf_engine import Generation, Sampling


def too_stale(sampled_version: int, current_version: int, staleness: int) -> bool:
    return sampled_version < current_version - staleness


class RolloutFleet:
    def __init__(self, handles: list, staleness: int = 0):
        self.handles = list(handles)
        self.staleness = staleness
        self.version = 0
        self.weights = None  # object reference to the current state dict (None: the base model)
        self.inflight = [0] * len(self.handles)
        self.resyncs = 0
        self.generated_tokens = 0

    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        i = min(range(len(self.handles)), key=lambda k: self.inflight[k])
        self.inflight[i] += 1
        try:
            for _ in range(3):
                generation = await self.handles[i].generate.remote(prompt_ids, sampling)
                if not too_stale(generation.version, self.version, self.staleness) or self.weights is None:
                    self.generated_tokens += len(generation.ids)
                    return generation
                self.resyncs += 1  # a restarted actor: give it the current weights, sample again
                await self.handles[i].update_weights.remote(self.version, self.weights)
            raise RuntimeError(f"rollout actor {i} keeps answering with stale weights")
        finally:
            self.inflight[i] -= 1

    async def set_weights(self, version: int, weights) -> None:
        self.version, self.weights = version, weights
        await asyncio.gather(*(h.update_weights.remote(version, weights) for h in self.handles))

    async def reseed(self, seed: int) -> None:
        await asyncio.gather(*(h.reseed.remote(seed + k) for k, h in enumerate(self.handles)))
