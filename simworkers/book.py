"""Bookkeeping of the simulation pool, as a plain class: no Ray, no asyncio, fully testable.

It holds which requests wait, which actor runs which, how often each request was tried, and
what to do when an actor dies: its requests go back to the front of the queue until they reach
`max_attempts`, after which they are answered as `failed` (an infrastructure fault, said so in
the reason) rather than lost. A dead actor never gets work again; the shell replaces it.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    id: int
    payload: Any  # (task, params): opaque here
    kind: str = ""  # requests of one kind take about the same time (the task's name)
    attempts: int = 0
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class ActorSlot:
    id: str
    alive: bool = True
    calls: dict[int, list[int]] = field(default_factory=dict)  # call id -> request ids
    done: int = 0

    @property
    def inflight(self) -> int:
        return sum(len(r) for r in self.calls.values())


@dataclass(frozen=True)
class Dispatch:
    actor: str
    call: int
    requests: tuple[Request, ...]


class PoolBook:
    """Assigns queued requests to live actors: at most `calls_per_actor` calls in flight per
    actor, each carrying enough requests to last about `call_s` seconds (from the observed
    time per request of that kind, at most `max_batch`), so that a call's fixed cost stays small
    next to simulations of a few milliseconds while slow ones still go one at a time."""

    def __init__(self, calls_per_actor: int = 2, max_batch: int = 32, max_attempts: int = 3, call_s: float = 0.05):
        if calls_per_actor < 1 or max_batch < 1 or max_attempts < 1:
            raise ValueError("calls_per_actor, max_batch and max_attempts must be >= 1")
        self.calls_per_actor, self.max_batch, self.max_attempts = calls_per_actor, max_batch, max_attempts
        self.call_s = call_s
        self.seconds_per_request: dict[str, float] = {}  # moving average by kind
        self.actors: dict[str, ActorSlot] = {}
        self.requests: dict[int, Request] = {}
        self.pending: deque[int] = deque()
        self._ids = itertools.count()
        self._calls = itertools.count()
        self.completed: Counter[str] = Counter()  # by status, filled by the shell
        self.retried = 0
        self.actor_deaths = 0

    # --- actors
    def add_actor(self, actor_id: str) -> None:
        if actor_id in self.actors:
            raise ValueError(f"actor {actor_id} is already in the pool")
        self.actors[actor_id] = ActorSlot(actor_id)

    def live_actors(self) -> list[str]:
        return [a.id for a in self.actors.values() if a.alive]

    def remove_idle_actor(self) -> str | None:
        """Pick a live actor with nothing in flight to retire (for shrinking), or None."""
        for slot in self.actors.values():
            if slot.alive and not slot.calls:
                del self.actors[slot.id]
                return slot.id
        return None

    def actor_failed(self, actor_id: str) -> tuple[list[Request], list[Request]]:
        """Mark an actor dead. Returns (requeued, given_up): every request it held goes back to
        the front of the queue, unless it already used all its attempts."""
        slot = self.actors[actor_id]
        if not slot.alive:
            return [], []
        slot.alive = False
        self.actor_deaths += 1
        requeued, given_up = [], []
        for call in list(slot.calls):
            for rid in slot.calls.pop(call):
                req = self.requests[rid]
                if req.attempts >= self.max_attempts:
                    given_up.append(self.requests.pop(rid))
                else:
                    requeued.append(req)
        for req in reversed(requeued):
            self.pending.appendleft(req.id)
        self.retried += len(requeued)
        return requeued, given_up

    # --- requests
    def submit(self, payload: Any, kind: str = "", urgent: bool = False) -> Request:
        """Queue a request; an `urgent` one goes before every waiting request."""
        req = Request(next(self._ids), payload, kind)
        self.requests[req.id] = req
        if urgent:
            self.pending.appendleft(req.id)
        else:
            self.pending.append(req.id)
        return req

    def assign(self) -> list[Dispatch]:
        """Hand queued requests to live actors with a free call slot, least loaded first."""
        out: list[Dispatch] = []
        while self.pending:
            free = [a for a in self.actors.values() if a.alive and len(a.calls) < self.calls_per_actor]
            if not free:
                break
            slot = min(free, key=lambda a: (len(a.calls), a.inflight))
            # Split the queue evenly over the free slots so that one actor does not take it all.
            share = -(-len(self.pending) // len(free))
            take = max(1, min(self.batch_size(self.requests[self.pending[0]].kind), share))
            batch = []
            while self.pending and len(batch) < take:
                req = self.requests[self.pending.popleft()]
                req.attempts += 1
                batch.append(req)
            call = next(self._calls)
            slot.calls[call] = [r.id for r in batch]
            out.append(Dispatch(slot.id, call, tuple(batch)))
        return out

    def complete(self, actor_id: str, call: int) -> list[Request]:
        """The call came back: its requests leave the book."""
        slot = self.actors.get(actor_id)
        rids = slot.calls.pop(call, []) if slot else []
        if slot:
            slot.done += len(rids)
        return [self.requests.pop(rid) for rid in rids if rid in self.requests]

    def batch_size(self, kind: str) -> int:
        """Requests per call; one until the kind's duration is known."""
        seconds = self.seconds_per_request.get(kind)
        if seconds is None:
            return 1
        return max(1, min(self.max_batch, int(self.call_s / max(seconds, 1e-6))))

    def observe(self, kind: str, seconds: float) -> None:
        """Record how long one request of this kind took."""
        old = self.seconds_per_request.get(kind)
        self.seconds_per_request[kind] = seconds if old is None else 0.8 * old + 0.2 * seconds

    # --- observation
    @property
    def queue_length(self) -> int:
        return len(self.pending)

    @property
    def inflight(self) -> int:
        return sum(a.inflight for a in self.actors.values())
