"""How new weights reach the rollout actors after an update: one strategy per transport, behind
one interface, and the driver owns each strategy's lifecycle.

`ObjectStoreSync`: learner rank 0 puts the full state dict once; every actor reads that object.
`CollectiveSync`: learner rank 0 and every engine form a process group of their own (NCCL on GPU,
gloo on CPU) and the weights travel in buckets (wire/weights.py). The group is built on first use
and again whenever an actor was restarted (its incarnation changed), since a process group
cannot take a new member. A restarted actor asked for a sample before that gets the weights
through the object store (`reference`); under staleness 1 those may already be one update newer
than their label, which only errs on the safe side of the bound.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from actors.fleet import RolloutFleet
from learner.config import LearnerConfig
from learner.group import LearnerGroup
from system.config import RolloutConfig


class WeightSync(Protocol):
    async def push(self, fleet: RolloutFleet, version: int) -> dict:
        """Every actor serves `version` when this returns; metrics of the transfer."""

    async def reference(self):
        """An object reference to the current full state dict, for one restarted actor."""


class ObjectStoreSync:
    def __init__(self, learner: LearnerGroup):
        self.learner = learner
        self.current = None

    async def push(self, fleet: RolloutFleet, version: int) -> dict:
        self.current = await asyncio.to_thread(self.learner.publish_weights)
        await fleet.set_weights(version, self.current)
        return {}

    async def reference(self):
        if self.current is None:
            self.current = await asyncio.to_thread(self.learner.publish_weights)
        return self.current


class CollectiveSync:
    def __init__(self, learner: LearnerGroup, backend: str, bucket_bytes: int, dtype: str | None = None):
        self.learner, self.backend = learner, backend
        self.plan = learner.weight_plan(bucket_bytes, dtype)
        self.members: list[str] | None = None
        self.builds = 0

    async def _build(self, fleet: RolloutFleet, identities: list[str]) -> None:
        world = 1 + len(fleet.handles)
        host, port = await self.learner.host_weight_group(world)
        await asyncio.gather(
            *self.learner.join_weight_group(host, port, world, self.backend),
            *fleet.join_weight_group(host, port, world, self.backend),
        )
        self.members = identities
        self.builds += 1

    async def push(self, fleet: RolloutFleet, version: int) -> dict:
        identities = await fleet.identities()
        if identities != self.members:
            await self._build(fleet, identities)
        sent, *_ = await asyncio.gather(*self.learner.broadcast_weights(), fleet.receive_weights(version, self.plan))
        return {"weight_sync/bytes": sent["bytes"], "weight_sync/group_builds": self.builds}

    async def reference(self):
        return await asyncio.to_thread(self.learner.publish_weights)


def make_weight_sync(learner: LearnerGroup, rollout: RolloutConfig, learner_cfg: LearnerConfig) -> WeightSync:
    """The configured transport (`rollout.weight_sync`): bf16 buckets over NCCL on GPU."""
    if rollout.weight_sync == "collective":
        on_gpu = learner_cfg.device == "cuda"
        dtype = "bfloat16" if on_gpu and learner_cfg.bf16 else None
        return CollectiveSync(learner, "nccl" if on_gpu else "gloo", rollout.weight_bucket_mb * 2**20, dtype)
    return ObjectStoreSync(learner)
