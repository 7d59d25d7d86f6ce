"""Bucketed weight broadcast (wire/weights.py): the bucket plan, and a real gloo group."""

import threading

import pytest
import torch

from wire.weights import (
    TensorMeta,
    WeightGroup,
    describe,
    host_store,
    plan_buckets,
    receive_buckets,
    send_buckets,
)


def _meta(name: str, n: int, dtype: str = "float32") -> TensorMeta:
    return TensorMeta(name, (n,), dtype)


def test_buckets_keep_order_and_respect_the_size():
    metas = [_meta("a", 10), _meta("b", 10), _meta("c", 10), _meta("d", 30)]
    plan = plan_buckets(metas, bucket_bytes=80)  # 20 float32 per bucket
    assert [[m.name for m in b] for b in plan] == [["a", "b"], ["c"], ["d"]]
    assert [m for b in plan for m in b] == metas  # order kept: receivers apply as buckets land
    for bucket in plan[:-1]:
        assert sum(m.nbytes for m in bucket) <= 80


def test_buckets_never_mix_dtypes():
    metas = [_meta("a", 2), _meta("b", 2, "bfloat16"), _meta("c", 2, "bfloat16"), _meta("d", 2)]
    plan = plan_buckets(metas, bucket_bytes=1 << 20)
    assert [[m.name for m in b] for b in plan] == [["a"], ["b", "c"], ["d"]]
    assert plan[1][0].nbytes == 4


def test_bucket_size_must_be_positive():
    with pytest.raises(ValueError, match="bucket_bytes"):
        plan_buckets([_meta("a", 1)], 0)


def test_gloo_broadcast_rebuilds_every_tensor_on_every_receiver():
    torch.manual_seed(0)
    state = {
        "embed.weight": torch.randn(50, 8),
        "norm.weight": torch.randn(8),
        "head.bias": torch.randn(50).to(torch.bfloat16),
        "layer.weight": torch.randn(8, 8),
    }
    plan = plan_buckets(describe(state), bucket_bytes=1024)
    assert len(plan) >= 3  # several buckets actually travel
    world = 3
    _store, port = host_store(world, timeout_s=60)  # kept alive while the group runs
    received: dict[int, dict] = {}
    errors: list[BaseException] = []

    def member(rank: int) -> None:
        try:
            group = WeightGroup("127.0.0.1", port, rank, world, "gloo", timeout_s=60)
            if rank == 0:
                received[0] = {"bytes": send_buckets(group, state, plan, torch.device("cpu"))}
            else:
                received[rank] = {k: v.clone() for k, v in receive_buckets(group, plan, torch.device("cpu"))}
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=member, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert received[0]["bytes"] == sum(v.numel() * v.element_size() for v in state.values())
    for rank in (1, 2):
        assert set(received[rank]) == set(state)
        for name, tensor in state.items():
            assert received[rank][name].dtype == tensor.dtype
            assert torch.equal(received[rank][name], tensor), name
