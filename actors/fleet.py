"""The rollout fleet: every rollout actor behind one `generate`, and the weights they serve.

Requests go to the actor with the fewest in flight. Weights are versioned: `set_weights` hands
one object-store reference to every actor, or (`CollectiveSync`) the learner broadcasts them in
buckets over NCCL or gloo straight into the engines. An actor that died is restarted by Ray with
the base weights; the first answer it gives from weights older than the staleness bound allows
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
        self.weights = None  # object reference to the current state dict (None: not published)
        self.fetch_weights = None  # async () -> reference, for a restarted actor when weights is None
        self.sync: CollectiveSync | None = None
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
                self.resyncs += 1  # a restarted actor: give it the current weights, sample again
                weights = self.weights if self.weights is not None else await self.fetch_weights()
                await self.handles[i].update_weights.remote(self.version, weights)
            raise RuntimeError(f"rollout actor {i} keeps answering with stale weights")
        finally:
            self.inflight[i] -= 1

    async def set_weights(self, version: int, weights) -> None:
        self.version, self.weights = version, weights
        await asyncio.gather(*(h.update_weights.remote(version, weights) for h in self.handles))

    async def push_weights(self, version: int) -> dict:
        """Collective mode: the learner broadcasts `version` into every engine."""
        info = await self.sync.push(self.handles, version)
        self.version = version
        return info

    async def reseed(self, seed: int) -> None:
        await asyncio.gather(*(h.reseed.remote(seed + k) for k, h in enumerate(self.handles)))


class CollectiveSync:
    """Bucketed broadcast from the learner's rank 0 to every rollout actor (actors/weight_sync.py).

    The group is built on first use and again whenever an actor has been restarted (its
    incarnation changed), since a process group cannot take a new member. A restarted actor that
    is asked for a sample before that gets the weights through the object store instead
    (`RolloutFleet.fetch_weights`); under staleness 1 those may already be one update newer than
    the version they are labelled with, which only errs on the safe side of the bound."""

    def __init__(self, learner, backend: str, bucket_bytes: int, dtype: str | None = None):
        self.learner, self.backend = learner, backend
        self.plan = learner.weight_plan(bucket_bytes, dtype)
        self.members: list[str] | None = None
        self.rebuilds = 0

    async def _build(self, handles: list, identities: list[str]) -> None:
        world = 1 + len(handles)
        host, port = await self.learner.ranks[0].host_weight_group.remote(world)
        await asyncio.gather(
            *self.learner.call_refs("join_weight_group", host, port, world, self.backend),
            *(h.join_weight_group.remote(host, port, k + 1, world, self.backend) for k, h in enumerate(handles)),
        )
        self.members = identities
        self.rebuilds += 1

    async def push(self, handles: list, version: int) -> dict:
        identities = list(await asyncio.gather(*(h.identity.remote() for h in handles)))
        if identities != self.members:
            await self._build(handles, identities)
        sent, *_ = await asyncio.gather(
            *self.learner.call_refs("broadcast_weights"),
            *(h.receive_weights.remote(version, self.plan) for h in handles),
        )
        return {**sent, "group_builds": self.rebuilds}
