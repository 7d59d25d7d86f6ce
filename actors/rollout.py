"""The rollout actor: a generation engine behind Ray, batching requests that arrive together.

Requests are token ids; answers are sampled ids with their log-probs and the weights version
that produced them. Requests that arrive within `batch_window_s` of each other (and share
sampling settings) run as one padded batch. New weights arrive by version and never land in the
middle of a batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

import torch

from actors.hf_engine import HFEngine
from wire.sampling import Generation, Sampling
from wire.storage import local_copy


@dataclass
class _Request:
    ids: list[int]
    sampling: Sampling
    future: asyncio.Future = field(repr=False)


class Engine(Protocol):
    """What an engine offers (actors/hf_engine.py, actors/vllm_engine.py)."""

    version: int

    def generate_batch(self, prompts: list[list[int]], sampling: Sampling) -> list[Generation]: ...

    def update_weights(self, version: int, state_dict: dict[str, torch.Tensor]) -> None: ...

    def join_weight_group(self, host: str, port: int, rank: int, world: int, backend: str) -> None: ...

    def receive_weights(self, version: int, plan: list) -> None: ...


EngineName = Literal["hf", "vllm"]
ENGINES: tuple[EngineName, ...] = get_args(EngineName)
# the engine's weights and arithmetic; auto: the checkpoint's for vLLM (the learner's are float32),
# float32 for the HF engine. bfloat16 runs the vLLM engine about 1.9x as fast on CPU (docs/design.md,
# "A real model on two cores"); the learner keeps float32 and the truncated IS weight covers the gap
EngineDtype = Literal["auto", "float32", "bfloat16"]
ENGINE_DTYPES: tuple[EngineDtype, ...] = get_args(EngineDtype)


def make_engine(kind: EngineName, model_path: str, kv_cache_mb: int = 256, dtype: EngineDtype = "auto") -> Engine:
    if dtype not in ENGINE_DTYPES:
        raise ValueError(f"unknown engine dtype {dtype!r}: use {', '.join(ENGINE_DTYPES)}")
    if kind == "hf":
        return HFEngine(model_path, dtype=torch.bfloat16 if dtype == "bfloat16" else torch.float32)
    if kind == "vllm":
        from actors.vllm_engine import VLLMEngine

        return VLLMEngine(model_path, kv_cache_bytes=kv_cache_mb * 2**20, dtype=dtype)
    raise ValueError(f"unknown engine {kind!r}: use hf or vllm")


class BatchingEngine:
    """Batches concurrent `generate` calls on one engine."""

    def __init__(self, engine: Engine, batch_window_s: float = 0.005, max_batch: int = 32):
        self.engine, self.window, self.max_batch = engine, batch_window_s, max_batch
        self.queue: asyncio.Queue[_Request] = asyncio.Queue()
        self.lock = asyncio.Lock()  # a batch or a weight update, never both
        self.batches = 0
        self.batched_requests = 0
        self._worker: asyncio.Task | None = None

    @property
    def version(self) -> int:
        return self.engine.version

    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        loop = asyncio.get_running_loop()
        if self._worker is not None and self._worker.get_loop() is not loop:  # a new event loop
            self.queue, self.lock, self._worker = asyncio.Queue(), asyncio.Lock(), None
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._serve())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Request(list(prompt_ids), sampling, future))
        return await future

    async def _serve(self) -> None:
        while True:
            first = await self.queue.get()
            batch = [first]
            deadline = asyncio.get_running_loop().time() + self.window
            while len(batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except TimeoutError:
                    break
            by_sampling: dict[tuple, list[_Request]] = {}
            for req in batch:
                s = req.sampling
                by_sampling.setdefault((s.max_new_tokens, s.temperature, s.top_p), []).append(req)
            for group in by_sampling.values():
                async with self.lock:
                    try:
                        results = await asyncio.to_thread(self._run, group)
                    except Exception as exc:
                        for req in group:
                            if not req.future.done():
                                req.future.set_exception(exc)
                        continue
                self.batches += 1
                self.batched_requests += len(group)
                for req, result in zip(group, results):
                    if not req.future.done():
                        req.future.set_result(result)

    def _run(self, group: list[_Request]) -> list[Generation]:
        return self.engine.generate_batch([r.ids for r in group], group[0].sampling)

    async def update_weights(self, version: int, state_dict: dict[str, torch.Tensor]) -> None:
        async with self.lock:
            await asyncio.to_thread(self.engine.update_weights, version, state_dict)

    async def receive_weights(self, version: int, plan: list) -> None:
        async with self.lock:
            await asyncio.to_thread(self.engine.receive_weights, version, plan)


class RolloutActor:
    """Ray actor shell (create with `ray.remote(RolloutActor)` and max_concurrency > 1)."""

    def __init__(
        self,
        model_path: str,
        batch_window_s: float = 0.005,
        max_batch: int = 32,
        threads: int | None = None,
        engine: str = "hf",
        kv_cache_mb: int = 256,
        dtype: EngineDtype = "auto",
    ):
        import uuid

        if threads:
            torch.set_num_threads(threads)
        model_path = local_copy(model_path)  # a model on a store: this node's cached copy
        self.engine = BatchingEngine(make_engine(engine, model_path, kv_cache_mb, dtype), batch_window_s, max_batch)
        self.incarnation = uuid.uuid4().hex  # a restarted actor is a new incarnation

    def identity(self) -> str:
        return self.incarnation

    async def join_weight_group(self, host: str, port: int, rank: int, world: int, backend: str) -> None:
        await asyncio.to_thread(self.engine.engine.join_weight_group, host, port, rank, world, backend)

    async def receive_weights(self, version: int, plan: list) -> int:
        await self.engine.receive_weights(version, plan)
        return version

    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        return await self.engine.generate(prompt_ids, sampling)

    async def update_weights(self, version: int, state_dict: dict) -> int:
        await self.engine.update_weights(version, state_dict)
        return version

    def version(self) -> int:
        return self.engine.version

    def reseed(self, seed: int) -> None:
        """Sampling from here on is a function of the seed, the weights and the request order."""
        torch.manual_seed(seed)

    def batching(self) -> dict:
        return {"batches": self.engine.batches, "requests": self.engine.batched_requests}
