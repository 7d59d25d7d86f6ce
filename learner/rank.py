"""One FSDP2 learner rank: a Ray actor that owns a shard of the policy and its optimiser state.

Every rank receives the whole training batch (one object-store read) and plans the same
micro-batches from it; each runs its own share. Loss terms are divided by the number of action
tokens in the whole batch and FSDP's gradient average over ranks is undone, so the update is the
token mean over the batch whatever the world size and micro-batch split.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import torch
import torch.distributed as dist

from learner import persist
from learner.attention import register as register_block_attention
from learner.batch import TrainingBatch
from learner.config import LearnerConfig
from learner.forward import packed_logprobs
from learner.loss import LossInputs, policy_loss, sft_loss
from learner.packing import MicroBatch, pack, plan_micro_batches
from learner.schedule import lr_at
from wire import weights as transport
from wire.storage import local_copy

# What a micro-batch's loss reports: named sums, added over micro-batches, then over ranks.
Sums = dict[str, float]
MicroLoss = Callable[[MicroBatch, int], tuple[torch.Tensor, Sums]]
TRAIN_SUMS = ("loss", "clip_tokens", "entropy_sum", "kl_sum", "ratio_sum", "action_tokens", "real", "computed")
SFT_SUMS = ("loss", "action_tokens")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def require_grouped_mm(device: torch.device) -> None:
    """transformers sends `experts_implementation="grouped_mm"` through torch's grouped GEMM only
    where torch has one and the GPU is SM80 or newer; elsewhere it loops over the experts in
    Python without a word (about 4.5x slower on an H100, docs/scaling.md). Refuse instead."""
    major, minor = torch.cuda.get_device_capability(device)
    has_kernel = hasattr(torch.nn.functional, "grouped_mm") or hasattr(torch, "_grouped_mm")
    if (major, minor) < (8, 0) or not has_kernel:
        why = "has no grouped GEMM" if not has_kernel else f"is compute capability {major}.{minor}, below 8.0"
        raise RuntimeError(
            f"learner.experts=grouped_mm: torch {torch.__version__} on {torch.cuda.get_device_name(device)} {why}; "
            "run on SM80+ GPUs (A100, H100) or set learner.experts=eager to loop over experts knowingly"
        )


class LearnerRank:
    """Create with `ray.remote(LearnerRank)` inside a placement group bundle (learner/group.py)."""

    def __init__(self, cfg: LearnerConfig, model_path: str, rank: int, world_size: int):
        # a model on a store (a URI run's base model or warm-up): this node's cached copy
        self.cfg, self.model_path, self.rank, self.world = cfg, local_copy(model_path), rank, world_size
        if cfg.device == "cpu":
            torch.set_num_threads(cfg.threads_per_rank)
        self.device = torch.device("cuda", 0) if cfg.device == "cuda" else torch.device("cpu")
        self.trainable: set[str] | None = None  # parameter names that train, when not all do

    def address(self) -> tuple[str, int]:
        import ray

        return ray.util.get_node_ip_address(), free_port()

    def setup(self, master: tuple[str, int], with_reference: bool = False) -> int:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        from transformers import AutoModelForCausalLM

        backend = "nccl" if self.cfg.device == "cuda" else "gloo"
        dist.init_process_group(
            backend, init_method=f"tcp://{master[0]}:{master[1]}", rank=self.rank, world_size=self.world
        )
        mp = None
        if self.cfg.device == "cuda" and self.cfg.bf16:
            mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)

        implementation = register_block_attention() if self.cfg.attention == "blocks" else self.cfg.attention
        experts = {"experts_implementation": self.cfg.experts} if self.cfg.device == "cuda" and self._moe() else {}
        if experts.get("experts_implementation") == "grouped_mm":
            require_grouped_mm(self.device)

        def sharded(trainable: bool) -> torch.nn.Module:
            model = AutoModelForCausalLM.from_pretrained(
                self.model_path, dtype=torch.float32, attn_implementation=implementation, **experts
            ).to(self.device)
            if trainable and self.cfg.activation_checkpointing:
                model.gradient_checkpointing_enable()
            layer_types = set(getattr(model, "_no_split_modules", None) or [])
            for module in model.modules():
                if type(module).__name__ in layer_types:
                    fully_shard(module, mp_policy=mp) if mp else fully_shard(module)
            fully_shard(model, mp_policy=mp) if mp else fully_shard(model)
            model.train(trainable)
            model.requires_grad_(trainable)
            return model

        self.model = sharded(True)
        if self.cfg.train_layers:
            self._freeze_below_top(self.cfg.train_layers)
        self.reference = sharded(False) if with_reference else None
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=self.cfg.lr,
            betas=self.cfg.adam_betas,
            weight_decay=self.cfg.weight_decay,
            foreach=self.cfg.device == "cuda",
        )
        return sum(p.numel() for p in self.model.parameters())

    def _freeze_below_top(self, n: int) -> None:
        """Only the top `n` decoder layers and the final norm keep gradients."""
        layer_types = set(getattr(self.model, "_no_split_modules", None) or [])
        # fully_shard swaps each layer's class for a subclass of it: look through the MRO
        layers = [m for m in self.model.modules() if any(c.__name__ in layer_types for c in type(m).__mro__)]
        if n > len(layers):
            raise ValueError(f"learner.train_layers {n}: the model has {len(layers)} decoder layers")
        self.model.requires_grad_(False)
        for layer in layers[-n:]:
            layer.requires_grad_(True)
        norm = getattr(getattr(self.model, "model", None), "norm", None)
        if norm is not None:
            norm.requires_grad_(True)
        self.trainable = {name for name, p in self.model.named_parameters() if p.requires_grad}

    def _moe(self) -> bool:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self.model_path)
        return bool(getattr(config, "num_experts", None) or getattr(config, "num_local_experts", None))

    # ---------------------------------------------------------------- training

    def _plans(self, batch: TrainingBatch) -> list[tuple[list[MicroBatch], int]]:
        """Per mini-batch: this rank's micro-batches (global row indices) and the mini-batch's
        action-token count over all ranks."""
        n, k = len(batch), max(1, min(self.cfg.minibatches, len(batch)))
        bounds = [round(i * n / k) for i in range(k + 1)]
        plans = []
        for lo, hi in itertools.pairwise(bounds):
            rows = list(range(lo, hi))
            mine = plan_micro_batches([batch.lengths[i] for i in rows], self.cfg.micro_batch_tokens, self.world)
            local = [MicroBatch(tuple(rows[j] for j in mb.rows), mb.tokens) for mb in mine[self.rank]]
            plans.append((local, batch.action_tokens(rows)))
        return plans

    def _logprobs(self, model, batch: TrainingBatch, mb: MicroBatch, temperature: float):
        packed = pack([batch.ids[i].tolist() for i in mb.rows], [batch.bounds[i] for i in mb.rows])
        return packed_logprobs(model, packed, self.device, self.cfg.attention, temperature)

    def _optimise(self, plans: list[tuple[list[MicroBatch], int]], micro_loss: MicroLoss) -> tuple[Sums, list[float]]:
        """The one optimisation loop: per mini-batch, zero the gradients, backward each
        micro-batch's loss (FSDP reduces gradients on the last one), clip, step. Returns this
        rank's named sums and the gradient norm of each mini-batch."""
        sums: Sums = defaultdict(float)
        norms = []
        for micro_batches, n_tokens in plans:
            self.optimizer.zero_grad(set_to_none=True)
            for k, mb in enumerate(micro_batches):
                self.model.set_requires_gradient_sync(k == len(micro_batches) - 1)
                loss, parts = micro_loss(mb, max(1, n_tokens))
                loss.backward()
                for name, value in parts.items():
                    sums[name] += float(value)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
            norms.append(float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm))
            self.optimizer.step()
        return sums, norms

    def _reduce(self, sums: Sums, names: tuple[str, ...]) -> Sums:
        """Each named sum added over ranks; every rank sends the same names in the same order."""
        values = torch.tensor([sums.get(name, 0.0) for name in names], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)  # on the rank's device: NCCL has no CPU tensors (found on an H100)
        return dict(zip(names, values.tolist()))

    def _set_lr(self, step: int, total_steps: int) -> float:
        lr = lr_at(step, total_steps, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_step(self, arrow: pa.RecordBatch, step: int, total_steps: int, temperature: float = 1.0) -> dict:
        started = time.perf_counter()
        batch = TrainingBatch.from_arrow(arrow)
        plans = self._plans(batch)
        old_by_row = self._recompute_old(batch, plans, temperature) if len(plans) > 1 else None
        lr = self._set_lr(step, total_steps)

        def micro_loss(mb: MicroBatch, n_tokens: int) -> tuple[torch.Tensor, Sums]:
            return self._policy_loss(batch, mb, n_tokens, temperature, old_by_row)

        sums, grad_norms = self._optimise(plans, micro_loss)
        s = self._reduce(sums, TRAIN_SUMS)
        tokens = max(1.0, s["action_tokens"])
        return {
            "loss": s["loss"] / len(plans),
            "clip_fraction": s["clip_tokens"] / tokens,
            "entropy": s["entropy_sum"] / tokens,
            "kl": s["kl_sum"] / tokens,
            "ratio_mean": s["ratio_sum"] / tokens,
            "grad_norm": float(np.mean(grad_norms)),
            "lr": lr,
            "action_tokens": int(s["action_tokens"]),
            "real_tokens": int(s["real"]),
            "computed_tokens": int(s["computed"]),
            "step_s": time.perf_counter() - started,
        }

    def _policy_loss(self, batch, mb, n_tokens, temperature, old_by_row) -> tuple[torch.Tensor, Sums]:
        logprobs, entropy = self._logprobs(self.model, batch, mb, temperature)
        if not mb.rows:  # an empty micro-batch still joins the collectives of forward and backward
            return logprobs.sum() * 0.0, {"computed": 1}
        mask = batch.field("mask", mb.rows).to(self.device)
        engine = batch.field("engine_logprobs", mb.rows).to(self.device)
        old = logprobs.detach() if old_by_row is None else torch.cat([old_by_row[i] for i in mb.rows]).to(self.device)
        use_engine = self.cfg.old_logprobs == "engine"
        inputs = LossInputs(
            logprobs=logprobs,
            old_logprobs=old,
            advantages=batch.field("advantages", mb.rows).to(self.device),
            mask=mask,
            ref_logprobs=self._reference_logprobs(batch, mb, temperature),
            engine_logprobs=torch.where(torch.isnan(engine), old, engine) if use_engine else None,
        )
        result = policy_loss(inputs, self.cfg.loss, n_tokens=n_tokens)
        m = mask.to(torch.float64).sum()
        tokens = float(sum(batch.lengths[i] for i in mb.rows))
        sums = {
            "loss": result.loss.detach().double(),
            "clip_tokens": result.clip_fraction.double() * m,
            "entropy_sum": (entropy.double() * mask).sum(),
            "kl_sum": result.kl.double() * n_tokens,
            "ratio_sum": result.ratio_mean.double() * m,
            "action_tokens": m,
            "real": tokens,
            "computed": tokens,
        }
        # FSDP averages gradients over ranks; the loss is already a share of the batch's token sum
        return result.loss * self.world, sums

    def _reference_logprobs(self, batch, mb, temperature) -> torch.Tensor | None:
        if self.reference is None or self.cfg.loss.kl_coef <= 0:
            return None
        with torch.no_grad():
            return self._logprobs(self.reference, batch, mb, temperature)[0]

    @torch.no_grad()
    def _recompute_old(self, batch, plans, temperature) -> dict[int, torch.Tensor]:
        """Log-probs of every row under the weights before this step's first update."""
        old: dict[int, torch.Tensor] = {}
        for micro_batches, _ in plans:
            for mb in micro_batches:
                logprobs, _ = self._logprobs(self.model, batch, mb, temperature)
                start = 0
                for i in mb.rows:
                    old[i] = logprobs[start : start + batch.lengths[i]].cpu()
                    start += batch.lengths[i]
        return old

    def sft_step(self, arrow: pa.RecordBatch, step: int, total_steps: int) -> dict:
        """Supervised step (the format warm-up): token-mean cross-entropy on the masked tokens."""
        batch = TrainingBatch.from_arrow(arrow)
        lr = self._set_lr(step, total_steps)

        def micro_loss(mb: MicroBatch, n_tokens: int) -> tuple[torch.Tensor, Sums]:
            logprobs, _ = self._logprobs(self.model, batch, mb, 1.0)
            if not mb.rows:
                return logprobs.sum() * 0.0, {}
            mask = batch.field("mask", mb.rows).to(self.device)
            loss = sft_loss(logprobs, mask, n_tokens)
            return loss * self.world, {"loss": loss.item(), "action_tokens": float(mask.sum())}

        sums, _ = self._optimise(self._plans(batch), micro_loss)
        s = self._reduce(sums, SFT_SUMS)
        return {"loss": s["loss"], "action_tokens": int(s["action_tokens"]), "lr": lr}

    def bare_step(self, arrow: pa.RecordBatch) -> dict:
        """The benchmark's baseline: next-token cross-entropy, backward and AdamW on the same
        micro-batches, with none of the policy loss, metrics or bookkeeping."""
        started = time.perf_counter()
        batch = TrainingBatch.from_arrow(arrow)

        def micro_loss(mb: MicroBatch, n_tokens: int) -> tuple[torch.Tensor, Sums]:
            logprobs, _ = self._logprobs(self.model, batch, mb, 1.0)
            return -logprobs.mean(), {}

        self._optimise(self._plans(batch), micro_loss)
        return {"step_s": time.perf_counter() - started}

    def logprobs(self, arrow: pa.RecordBatch, temperature: float = 1.0) -> list[list[float]] | None:
        """Every row's per-token log-probs under the current weights (rank 0 returns them)."""
        batch = TrainingBatch.from_arrow(arrow)
        old = self._recompute_old(batch, self._plans(batch), temperature)
        gathered = [None] * self.world
        dist.all_gather_object(gathered, old)
        if self.rank != 0:
            return None
        merged = {i: t for part in gathered for i, t in part.items()}
        return [merged[i].tolist() for i in range(len(batch))]

    # ---------------------------------------------------------------- weights and checkpoints

    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(self.model, options=options)
        return state if self.rank == 0 else None

    def publish_weights(self) -> list | None:
        """Rank 0 puts the whole state dict in the object store once; every rollout actor reads
        that one object. Returned inside a list so that Ray hands back the reference itself."""
        import ray

        state = self.full_state_dict()
        if state is not None and self.trainable is not None:  # frozen weights never change: send what trains
            state = {name: tensor for name, tensor in state.items() if name in self.trainable}
        return [ray.put(state)] if state is not None else None

    # Collective weight sync (wire/weights.py): rank 0 sends to the rollout engines; the driver
    # owns the group's lifecycle (system/rl/weights.py).

    @staticmethod
    def _gathered(tensor: torch.Tensor) -> torch.Tensor:
        """The full tensor behind one (possibly sharded) parameter: a collective on every rank."""
        full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
        return full.detach()

    def weight_plan(self, bucket_bytes: int, dtype: str | None = None) -> list | None:
        """The bucket plan of this model's weights (every rank computes it; rank 0 returns it).
        `dtype` casts what travels (e.g. bfloat16 for GPU engines); None keeps each tensor's."""
        from dataclasses import replace

        metas = transport.describe(self.model.state_dict())
        if dtype:
            metas = [replace(m, dtype=dtype) for m in metas]
        self._weight_plan = transport.plan_buckets(metas, bucket_bytes)
        return self._weight_plan if self.rank == 0 else None

    def host_weight_group(self, world: int) -> tuple[str, int] | None:
        """Rank 0 hosts the weight-sync group's store; returns where the engines should join."""
        import ray

        if self.rank != 0:
            return None
        self._weight_store, port = transport.host_store(world)
        return ray.util.get_node_ip_address(), port

    def join_weight_group(self, host: str, port: int, world: int, backend: str) -> None:
        if self.rank == 0:
            self._weight_group = transport.WeightGroup(host, port, 0, world, backend)

    @torch.no_grad()
    def broadcast_weights(self) -> dict:
        """Every rank gathers one parameter at a time (FSDP all-gather); rank 0 packs each bucket
        and broadcasts it, so no rank ever holds more than one bucket beyond its shard."""
        started = time.perf_counter()
        state = self.model.state_dict()
        sent = 0
        for bucket in self._weight_plan:
            parts = [self._gathered(state[m.name]) for m in bucket]
            if self.rank == 0:
                flat = transport.pack(parts, bucket, self.device)
                self._weight_group.broadcast(flat)
                sent += flat.numel() * flat.element_size()
        return {"bytes": sent, "seconds": time.perf_counter() - started, "buckets": len(self._weight_plan)}

    def save(self, path: str) -> None:
        persist.save(self.model, self.optimizer, path)

    def load(self, path: str) -> None:
        persist.load(self.model, self.optimizer, path)

    def export(self, path: str) -> None:
        """A Hugging Face folder (config, weights, tokenizer) of the current policy, on rank 0."""
        state = self.full_state_dict()
        if self.rank == 0:
            persist.export(state, self.model_path, path)

    def shutdown(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()
