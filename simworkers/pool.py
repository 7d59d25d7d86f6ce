"""The simulation pool on Ray: simulation actors and an asyncio front with `submit(task, params)`.

The actors are thin: each holds one backend (and so one ngspice process). `SimPool` is a thin
shell over `PoolBook`: it sends the book's dispatches, feeds results back, and replaces an actor
that died; the book decides what is retried. A request is answered exactly once, never lost.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from simworkers.backends import make_backend
from simworkers.book import Dispatch, PoolBook
from simworkers.pdk import PdkError, get_process, install
from simworkers.result import SimResult
from simworkers.task import Task

_CALL_SLACK_S = 30.0  # beyond the per-simulation limits, before a silent actor is declared dead


class SimActor:
    """One simulation worker: a backend and its ngspice process. Runs requests in order."""

    def __init__(self, backend: str = "shared", timeout_s: float | None = None):
        self.backend = make_backend(backend, timeout_s=timeout_s)

    def simulate_batch(self, requests: list[tuple[Task, dict]]) -> list[SimResult]:
        return [self._simulate(task, params) for task, params in requests]

    def _simulate(self, task: Task, params: Mapping[str, object]) -> SimResult:
        proc = get_process(task.process)
        if not proc.installed():  # a node that joined later installs its models on first use
            try:
                install(task.process, log=lambda *_: None)
            except PdkError as exc:
                return SimResult("failed", {}, f"device models unavailable: {exc}"[:300], 0.0, self.backend.worker)
        return self.backend.simulate(task, params)

    def pid(self) -> int:
        return os.getpid()

    def __ray_terminate__(self):  # close ngspice with the actor
        self.backend.close()


@dataclass
class PoolStats:
    actors: int
    queue_length: int
    inflight: int
    completed: dict[str, int]
    sims_per_s: float
    retried: int
    actor_deaths: int


class SimPool:
    """`await pool.submit(task, params)` -> SimResult, over `size` simulation actors."""

    def __init__(
        self,
        size: int | None = None,
        backend: str = "shared",
        *,
        resources: dict | None = None,
        calls_per_actor: int = 2,
        max_batch: int = 4,
        max_attempts: int = 3,
        timeout_s: float | None = None,
    ):
        if not ray.is_initialized():
            raise RuntimeError("SimPool needs Ray: call ray.init() first")
        self.size = size or int(ray.available_resources().get("CPU", os.cpu_count() or 1))
        self.backend, self.resources, self.timeout_s = backend, resources or {}, timeout_s
        self.book = PoolBook(calls_per_actor, max_batch, max_attempts)
        self.handles: dict[str, ray.actor.ActorHandle] = {}
        self._futures: dict[int, asyncio.Future] = {}
        self._serial = 0
        self._started = time.monotonic()
        self._remote = ray.remote(num_cpus=1, resources=self.resources or None, max_restarts=0)(SimActor)
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> str:
        self._serial += 1
        actor_id = f"sim-{self._serial}"
        self.handles[actor_id] = self._remote.options(name=None).remote(self.backend, self.timeout_s)
        self.book.add_actor(actor_id)
        return actor_id

    async def submit(self, task: Task, params: Mapping[str, object]) -> SimResult:
        req = self.book.submit((task, dict(params)), task.name)
        future = asyncio.get_running_loop().create_future()
        self._futures[req.id] = future
        self._pump()
        return await future

    async def map(self, task: Task, designs: list[Mapping[str, object]]) -> list[SimResult]:
        return list(await asyncio.gather(*(self.submit(task, d) for d in designs)))

    def _pump(self) -> None:
        for dispatch in self.book.assign():
            asyncio.get_running_loop().create_task(self._run(dispatch))

    async def _run(self, dispatch: Dispatch) -> None:
        handle = self.handles[dispatch.actor]
        payload = [r.payload for r in dispatch.requests]
        deadline = _CALL_SLACK_S + sum((self.timeout_s or task.timeout_s) * 2 for task, _ in payload)
        try:
            ref = handle.simulate_batch.remote(payload)
            results = await asyncio.wait_for(asyncio.wrap_future(ref.future()), deadline)
        except (TimeoutError, RayActorError, GetTimeoutError) as exc:
            self._actor_lost(dispatch.actor, exc)
        else:
            for req, result in zip(self.book.complete(dispatch.actor, dispatch.call), results):
                self.book.observe(req.kind, result.elapsed_s)
                self._answer(req.id, result)
        self._pump()

    def _actor_lost(self, actor_id: str, exc: BaseException) -> None:
        _, given_up = self.book.actor_failed(actor_id)
        for req in given_up:
            self._answer(
                req.id,
                SimResult(
                    "failed",
                    {},
                    f"infrastructure: simulation actor lost {req.attempts} times ({type(exc).__name__})",
                    0.0,
                    actor_id,
                ),
            )
        handle = self.handles.pop(actor_id, None)
        if handle is not None:
            ray.kill(handle, no_restart=True)
        if len(self.book.live_actors()) < self.size:
            self._spawn()

    def _answer(self, request_id: int, result: SimResult) -> None:
        self.book.completed[result.status] += 1
        future = self._futures.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    def stats(self) -> PoolStats:
        done = sum(self.book.completed.values())
        return PoolStats(
            len(self.book.live_actors()),
            self.book.queue_length,
            self.book.inflight,
            dict(self.book.completed),
            done / max(1e-9, time.monotonic() - self._started),
            self.book.retried,
            self.book.actor_deaths,
        )

    def actor_pids(self) -> dict[str, int]:
        return {aid: ray.get(h.pid.remote()) for aid, h in self.handles.items()}

    def kill_actor(self, actor_id: str) -> None:
        """Kill one actor as a fault would (for tests and drills); the pool notices and recovers."""
        ray.kill(self.handles[actor_id], no_restart=True)

    async def warm_up(self, task: Task) -> None:
        """Load `task` on every actor (starts ngspice), so that timings exclude start-up."""
        await asyncio.gather(
            *(
                asyncio.wrap_future(h.simulate_batch.remote([(task, task.reference())]).future())
                for h in self.handles.values()
            )
        )

    def shutdown(self) -> None:
        for handle in self.handles.values():
            ray.kill(handle, no_restart=True)
        self.handles.clear()
