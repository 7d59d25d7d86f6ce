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
from concurrent.futures import Future
from dataclasses import dataclass

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from simworkers.backends import make_backend
from simworkers.book import Dispatch, PoolBook
from simworkers.pdk import PdkError, get_process, install
from simworkers.result import SimResult
from simworkers.sizing import PoolSizer, PoolView
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

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def __ray_terminate__(self):  # close ngspice with the actor
        self.backend.close()


@dataclass
class PoolStats:
    actors: int  # serving
    starting: int  # asked for, not answering yet
    queue_length: int
    inflight: int
    completed: dict[str, int]
    sims_per_s: float
    retried: int
    actor_deaths: int


class SimPool:
    """`await pool.submit(task, params)` -> SimResult, over `size` simulation actors.

    With a `sizer`, the pool is elastic: actors ask for one unit of the custom resource
    `resource` each; the pool grows while requests wait and the cluster has free units (a node
    that joins with `--resources '{"sim": N}'` adds N) and retires actors that stay idle."""

    def __init__(
        self,
        size: int | None = None,
        backend: str = "shared",
        *,
        resources: dict | None = None,
        calls_per_actor: int = 2,
        max_batch: int = 32,
        max_attempts: int = 3,
        timeout_s: float | None = None,
        sizer: PoolSizer | None = None,
        resource: str = "sim",
    ):
        if not ray.is_initialized():
            raise RuntimeError("SimPool needs Ray: call ray.init() first")
        self.sizer, self.resource = sizer, resource
        if sizer is not None:
            resources = {**(resources or {}), resource: 1}
            size = size if size is not None else max(sizer.min_actors, min(sizer.max_actors, self._free_units()))
        self.size = size or int(ray.available_resources().get("CPU", os.cpu_count() or 1))
        self.backend, self.resources, self.timeout_s = backend, resources or {}, timeout_s
        self._starting: dict[str, Future] = {}  # actor id -> its first answer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_scale = 0.0
        self._last_busy = time.monotonic()
        self.book = PoolBook(calls_per_actor, max_batch, max_attempts)
        self.handles: dict[str, ray.actor.ActorHandle] = {}
        self._futures: dict[int, asyncio.Future] = {}
        self._serial = 0
        self._started = time.monotonic()
        self._closed = False
        self._heartbeat: asyncio.TimerHandle | None = None
        self._remote = ray.remote(num_cpus=1, resources=self.resources or None, max_restarts=0)(SimActor)
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> str:
        """Start an actor; it joins the book (and gets work) once it answers, so that requests
        never wait on an actor the cluster has not placed yet."""
        self._serial += 1
        actor_id = f"sim-{self._serial}"
        handle = self._remote.options(name=None).remote(self.backend, self.timeout_s)
        self.handles[actor_id] = handle
        ready = handle.pid.remote().future()
        self._starting[actor_id] = ready
        ready.add_done_callback(lambda _: self._wake())
        return actor_id

    def _wake(self) -> None:
        """Called from Ray's thread when an actor answers: pump on the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._pump)

    def _promote(self) -> None:
        for actor_id, ready in list(self._starting.items()):
            if not ready.done():
                continue
            del self._starting[actor_id]
            if ready.exception() is None:
                self.book.add_actor(actor_id)
            elif (handle := self.handles.pop(actor_id, None)) is not None:
                ray.kill(handle, no_restart=True)

    def _free_units(self) -> int:
        return int(ray.available_resources().get(self.resource, 0))

    def autoscale(self, now: float | None = None) -> int:
        """Apply the sizer once (at most every half second); returns actors added or retired."""
        now = time.monotonic() if now is None else now
        if self.sizer is None or now - self._last_scale < 0.5:
            return 0
        self._last_scale = now
        if self.book.queue_length or self.book.inflight:
            self._last_busy = now
        serving = len(self.book.live_actors())
        # requests beyond the one each serving actor is running wait, whether in the book's queue
        # or batched into an actor's call
        backlog = self.book.queue_length + max(0, self.book.inflight - serving)
        # the cluster's free count may still include units just given to starting actors
        free = max(0, self._free_units() - len(self._starting))
        view = PoolView(serving, len(self._starting), backlog, free, now - self._last_busy)
        change = self.sizer.decide(view)
        for _ in range(max(0, change)):
            self._spawn()
        if change < 0 and (retired := self.book.remove_idle_actor()) is not None:
            ray.kill(self.handles.pop(retired), no_restart=True)
        self.size = len(self.book.live_actors()) + len(self._starting)
        return change

    async def submit(self, task: Task, params: Mapping[str, object], urgent: bool = False) -> SimResult:
        """One simulation; `urgent` ones (that others wait on) are served before the queue."""
        if self._closed:
            raise RuntimeError("the simulation pool is shut down")
        req = self.book.submit((task, dict(params)), task.name, urgent)
        future = asyncio.get_running_loop().create_future()
        self._futures[req.id] = future
        self._pump()
        return await future

    async def map(self, task: Task, designs: list[Mapping[str, object]]) -> list[SimResult]:
        return list(await asyncio.gather(*(self.submit(task, d) for d in designs)))

    def _pump(self) -> None:
        if self._closed:  # an actor's late answer after shutdown: nothing to send work to
            return
        self._loop = asyncio.get_running_loop()
        self._promote()
        self.autoscale()
        for dispatch in self.book.assign():
            asyncio.get_running_loop().create_task(self._run(dispatch))
        self._keep_looking()

    def _keep_looking(self) -> None:
        """An elastic pool with requests waiting for an actor looks again every half second: the
        unit a dead actor held is freed by the cluster later, and a node that joins brings no
        event of its own. Without this, a pool whose last actor died between two looks waited
        for ever (found by `tlgrpo soak`)."""
        if self.sizer is None or self._heartbeat is not None or not self.book.queue_length:
            return

        def beat() -> None:
            self._heartbeat = None
            self._pump()

        self._heartbeat = asyncio.get_running_loop().call_later(0.5, beat)

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
        """Every call in flight on a dead actor lands here; the first one retires it."""
        _, given_up = self.book.actor_failed(actor_id)
        reason = f"infrastructure: simulation actor lost %d times ({type(exc).__name__})"
        for req in given_up:
            self._answer(req.id, SimResult("failed", {}, reason % req.attempts, 0.0, actor_id))
        handle = self.handles.pop(actor_id, None)
        if handle is None:
            return  # already retired by an earlier call's failure
        ray.kill(handle, no_restart=True)
        if self.sizer is None and len(self.book.live_actors()) + len(self._starting) < self.size:
            self._spawn()  # fixed size: replace at once (elastic pools regrow through the sizer)

    def _answer(self, request_id: int, result: SimResult) -> None:
        self.book.completed[result.status] += 1
        future = self._futures.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    @property
    def unanswered(self) -> int:
        """Requests submitted and not answered yet (0 once every caller has its result)."""
        return len(self._futures)

    def stats(self) -> PoolStats:
        done = sum(self.book.completed.values())
        return PoolStats(
            len(self.book.live_actors()),
            len(self._starting),
            self.book.queue_length,
            self.book.inflight,
            dict(self.book.completed),
            done / max(1e-9, time.monotonic() - self._started),
            self.book.retried,
            self.book.actor_deaths,
        )

    def actor_nodes(self) -> dict[str, str]:
        """Serving actor id -> the Ray node it runs on."""
        return {aid: ray.get(self.handles[aid].node.remote()) for aid in self.book.live_actors()}

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
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for handle in self.handles.values():
            ray.kill(handle, no_restart=True)
        self.handles.clear()
