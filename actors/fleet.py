"""The rollout fleet: every rollout actor behind one `generate`, and the weights they serve.

Requests go to the actor with the fewest in flight. Weights are versioned. An actor that died is
restarted by Ray with the base weights; the first answer it gives from weights older than the
staleness bound allows sends it the current ones (from `fetch_weights`, an object reference to
the full state dict) and the request is sampled again, so no stale sample gets through. How the
weights travel on an update is the driver's choice (system/rl/weights.py); the fleet only offers
each actor's side of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from wire.sampling import Generation, Sampling


def too_stale(sampled_version: int, current_version: int, staleness: int) -> bool:
    return sampled_version < current_version - staleness


class RolloutFleet:
    def __init__(self, handles: list, staleness: int = 0, fetch_weights: Callable[[], Awaitable] | None = None):
        self.handles = list(handles)
        self.staleness = staleness
        self.fetch_weights = fetch_weights  # the current weights, for a restarted actor
        self.version = 0
        self.inflight = [0] * len(self.handles)
        self.resyncs = 0
        self.generated_tokens = 0

    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        i = min(range(len(self.handles)), key=lambda k: self.inflight[k])
        self.inflight[i] += 1
        try:
            for _ in range(3):
                generation = await self.handles[i].generate.remote(prompt_ids, sampling)
                if not too_stale(generation.version, self.version, self.staleness) or self.version == 0:
                    self.generated_tokens += len(generation.ids)
                    return generation
                if self.fetch_weights is None:
                    raise RuntimeError(f"rollout actor {i} serves stale weights and the fleet has no fetch_weights")
                self.resyncs += 1  # a restarted actor: give it the current weights, sample again
                await self.handles[i].update_weights.remote(self.version, await self.fetch_weights())
            raise RuntimeError(f"rollout actor {i} keeps answering with stale weights")
        finally:
            self.inflight[i] -= 1

    async def set_weights(self, version: int, weights) -> None:
        """Every actor loads `weights` (an object reference to a full state dict) as `version`."""
        self.version = version
        await asyncio.gather(*(h.update_weights.remote(version, weights) for h in self.handles))

    # The actors' side of a collective weight sync (wire/weights.py), driven by system/rl/weights.py.

    async def identities(self) -> list[str]:
        return list(await asyncio.gather(*(h.identity.remote() for h in self.handles)))

    def join_weight_group(self, host: str, port: int, world: int, backend: str) -> list:
        return [h.join_weight_group.remote(host, port, k + 1, world, backend) for k, h in enumerate(self.handles)]

    async def receive_weights(self, version: int, plan: list) -> None:
        await asyncio.gather(*(h.receive_weights.remote(version, plan) for h in self.handles))
        self.version = version

    def kill(self) -> None:
        """End every rollout actor (a run that rebuilds its components starts new ones)."""
        import ray

        for handle in self.handles:
            ray.kill(handle, no_restart=True)

    async def batching(self) -> dict:
        """Batches run and requests served, summed over the actors (since each started)."""
        counts = await asyncio.gather(*(h.batching.remote() for h in self.handles))
        return {k: sum(c[k] for c in counts) for k in ("batches", "requests")}

    async def reseed(self, seed: int) -> None:
        await asyncio.gather(*(h.reseed.remote(seed + k) for k, h in enumerate(self.handles)))
