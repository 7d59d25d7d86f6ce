"""Weights from the learner to the rollout engines over a collective: NCCL on GPU, gloo on CPU.

The learner's rank 0 and every rollout engine form one process group of their own (a TCP store
hosted by rank 0, and a raw gloo or NCCL process group over it), apart from the learner's FSDP
group. After each step rank 0 gathers the full state dict and broadcasts it in buckets: tensors of
one dtype packed into flat buffers of at most `bucket_bytes`, so that peak extra memory is one
bucket and each broadcast is large enough to run at link speed. Receivers know the bucket plan
from set-up and rebuild each tensor as a view of the bucket.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch


@dataclass(frozen=True)
class TensorMeta:
    name: str
    shape: tuple[int, ...]
    dtype: str  # e.g. "float32": plain text, so that a plan pickles anywhere

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def nbytes(self) -> int:
        return self.numel * torch.empty((), dtype=self.torch_dtype).element_size()


def describe(state: Mapping[str, torch.Tensor]) -> list[TensorMeta]:
    return [TensorMeta(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()]


def plan_buckets(metas: list[TensorMeta], bucket_bytes: int) -> list[list[TensorMeta]]:
    """Consecutive tensors of one dtype share a bucket up to `bucket_bytes`; a larger tensor
    travels alone. Order is kept, so that receivers can apply tensors as buckets arrive."""
    if bucket_bytes <= 0:
        raise ValueError(f"bucket_bytes must be positive, got {bucket_bytes}")
    buckets: list[list[TensorMeta]] = []
    size = 0
    for meta in metas:
        current = buckets[-1] if buckets else None
        if current is None or current[0].dtype != meta.dtype or size + meta.nbytes > bucket_bytes:
            buckets.append([meta])
            size = meta.nbytes
        else:
            current.append(meta)
            size += meta.nbytes
    return buckets


class WeightGroup:
    """One member of the weight-sync process group (rank 0 is the learner and sends)."""

    def __init__(self, host: str, port: int, rank: int, world: int, backend: str, timeout_s: float = 600.0):
        timeout = timedelta(seconds=timeout_s)
        self.rank, self.world, self.backend = rank, world, backend
        self.store = torch.distributed.TCPStore(
            host, port, world, is_master=False, timeout=timeout, wait_for_workers=False
        )
        if backend == "nccl":
            self.pg = torch.distributed.ProcessGroupNCCL(self.store, rank, world)
        elif backend == "gloo":
            self.pg = torch.distributed.ProcessGroupGloo(self.store, rank, world, timeout)
        else:
            raise ValueError(f"weight-sync backend must be nccl or gloo, got {backend!r}")

    def broadcast(self, tensor: torch.Tensor) -> None:
        self.pg.broadcast(tensor, 0).wait()
        if tensor.is_cuda:
            torch.cuda.current_stream().synchronize()


def host_store(world: int, timeout_s: float = 600.0) -> tuple[torch.distributed.TCPStore, int]:
    """The group's store on this host (rank 0): a free port chosen by the OS."""
    store = torch.distributed.TCPStore(
        "0.0.0.0", 0, world, is_master=True, timeout=timedelta(seconds=timeout_s), wait_for_workers=False
    )
    return store, store.port


def pack(tensors: list[torch.Tensor], bucket: list[TensorMeta], device: torch.device) -> torch.Tensor:
    """One bucket's tensors as one flat buffer in the bucket's dtype, on `device`."""
    return torch.cat([t.detach().reshape(-1).to(device, m.torch_dtype) for t, m in zip(tensors, bucket)])


def send_buckets(
    group: WeightGroup, state: Mapping[str, torch.Tensor], plan: list[list[TensorMeta]], device: torch.device
) -> int:
    """Broadcast every bucket from rank 0; returns the bytes sent."""
    sent = 0
    for bucket in plan:
        flat = pack([state[m.name] for m in bucket], bucket, device)
        group.broadcast(flat)
        sent += flat.numel() * flat.element_size()
    return sent


def receive_buckets(
    group: WeightGroup, plan: list[list[TensorMeta]], device: torch.device
) -> Iterator[tuple[str, torch.Tensor]]:
    """The receiving side of `send_buckets`: (name, tensor) pairs as each bucket lands."""
    for bucket in plan:
        flat = torch.empty(sum(m.numel for m in bucket), dtype=bucket[0].torch_dtype, device=device)
        group.broadcast(flat)
        offset = 0
        for meta in bucket:
            yield meta.name, flat[offset : offset + meta.numel].view(meta.shape)
            offset += meta.numel


__all__ = [
    "TensorMeta",
    "WeightGroup",
    "describe",
    "host_store",
    "pack",
    "plan_buckets",
    "receive_buckets",
    "send_buckets",
]
