"""The learner group: one Ray actor per rank, placed together by a placement group.

`torch.distributed` is set up through Ray: rank 0 names its address, every rank joins it (gloo on
CPU, NCCL on GPU). The group is the driver's one handle on training, weights and checkpoints;
every call goes to all ranks at once, since each is a collective.
"""

from __future__ import annotations

import pyarrow as pa

from learner.config import LearnerConfig


class RankLost(RuntimeError):
    """An infrastructure fault: a learner rank died, or a collective failed because one did. The
    group cannot go on; the driver rebuilds it from the last checkpoint (system/rl/train.py)."""


class LearnerGroup:
    def __init__(self, cfg: LearnerConfig, model_path: str, with_reference: bool = False):
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from learner.rank import LearnerRank

        self.cfg = cfg
        gpus = 1 if cfg.device == "cuda" else 0
        bundle = {"CPU": cfg.cpus_per_rank, **({"GPU": gpus} if gpus else {})}
        self.placement = placement_group([bundle] * cfg.world_size, strategy="PACK")
        ray.get(self.placement.ready(), timeout=600)
        remote = ray.remote(LearnerRank)
        self.ranks = [
            remote.options(
                num_cpus=cfg.cpus_per_rank,
                num_gpus=gpus,
                scheduling_strategy=PlacementGroupSchedulingStrategy(self.placement, placement_group_bundle_index=i),
            ).remote(cfg, model_path, i, cfg.world_size)
            for i in range(cfg.world_size)
        ]
        master = ray.get(self.ranks[0].address.remote())
        self.parameters = ray.get([r.setup.remote(master, with_reference) for r in self.ranks])[0]

    def call_refs(self, method: str, *args) -> list:
        """The same call on every rank, as object references (to await alongside other actors)."""
        return [getattr(r, method).remote(*args) for r in self.ranks]

    def _all(self, method: str, *args):
        """The call on every rank, failing at the first rank that fails: the others may be waiting
        for it inside a collective, and would wait until the collective's timeout."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        refs = self.call_refs(method, *args)
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                ray.get(ready)
        except RayActorError as exc:
            raise RankLost(f"learner rank lost during {method}: {exc}") from exc
        except RayTaskError as exc:
            if self._a_rank_died():
                raise RankLost(f"learner rank lost during {method} ({type(exc.cause).__name__} on a peer)") from exc
            raise
        return ray.get(refs)

    def _a_rank_died(self) -> bool:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        for rank in self.ranks:
            try:
                ray.get(rank.__ray_ready__.remote(), timeout=30)
            except (RayActorError, GetTimeoutError):
                return True
        return False

    # Collective weight sync (wire/weights.py). The driver owns the group: it asks rank 0 to host
    # it, has every member join, then runs each broadcast (system/rl/weights.py).

    def weight_plan(self, bucket_bytes: int, dtype: str | None = None) -> list:
        """The bucket plan of the policy's weights, in the order the broadcast sends them."""
        return self._all("weight_plan", bucket_bytes, dtype)[0]

    def host_weight_group(self, world: int):
        """Rank 0 hosts the weight-sync group's store: a reference to its (host, port)."""
        return self.ranks[0].host_weight_group.remote(world)

    def join_weight_group(self, host: str, port: int, world: int, backend: str) -> list:
        """Every rank joins (rank 0 as the sender; the others only gather their shards)."""
        return self.call_refs("join_weight_group", host, port, world, backend)

    def broadcast_weights(self) -> list:
        """One broadcast of the current weights; rank 0's reference returns what was sent."""
        return self.call_refs("broadcast_weights")

    def train_step(self, batch: pa.RecordBatch, step: int, total_steps: int, temperature: float = 1.0) -> dict:
        import ray

        ref = ray.put(batch)  # one copy in the object store, read by every rank
        return self._all("train_step", ref, step, total_steps, temperature)[0]

    def sft_step(self, batch: pa.RecordBatch, step: int, total_steps: int) -> dict:
        import ray

        return self._all("sft_step", ray.put(batch), step, total_steps)[0]

    def bare_step(self, batch: pa.RecordBatch) -> dict:
        import ray

        return self._all("bare_step", ray.put(batch))[0]

    def logprobs(self, batch: pa.RecordBatch, temperature: float = 1.0) -> list[list[float]]:
        import ray

        return self._all("logprobs", ray.put(batch), temperature)[0]

    def publish_weights(self):
        """An object reference to the full state dict, put once by rank 0."""
        return self._all("publish_weights")[0][0]

    def save(self, path: str) -> None:
        self._all("save", path)

    def load(self, path: str) -> None:
        self._all("load", path)

    def export(self, path: str) -> None:
        self._all("export", path)

    def shutdown(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        try:
            self._all("shutdown")
        except (RankLost, ray.exceptions.RayError):
            pass  # a rank already lost: killing the rest below is all that is left to do
        finally:
            for r in self.ranks:
                ray.kill(r)
            remove_placement_group(self.placement)
