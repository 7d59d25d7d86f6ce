"""How many simulation actors the pool should have: one small rule, no Ray.

Grow while requests wait and the cluster offers free `sim` capacity, up to `max_actors`; shrink
an idle actor after `idle_s` seconds without a queue, down to `min_actors`. Actors asked for but
not yet placed count as present, so a backlog never asks twice for the same capacity.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PoolView:
    live: int  # actors serving
    starting: int  # actors asked for, not yet serving
    queue_length: int  # requests waiting for a free actor
    free_capacity: int  # actors the cluster could place now (free `sim` resource units)
    idle_s: float  # seconds since the queue was last non-empty


@dataclass(frozen=True)
class PoolSizer:
    min_actors: int = 1
    max_actors: int = 64
    per_actor_backlog: int = 2  # queued requests that justify one more actor
    idle_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_actors <= self.max_actors or self.max_actors < 1:
            raise ValueError(
                f"need 0 <= min_actors <= max_actors and max_actors >= 1, got {self.min_actors}, {self.max_actors}"
            )

    def decide(self, view: PoolView) -> int:
        """Actors to add (> 0) or retire (< 0); 0 keeps the pool as it is."""
        present = view.live + view.starting
        if present < self.min_actors:
            return self.min_actors - present
        if view.queue_length > 0:
            wanted = -(-view.queue_length // self.per_actor_backlog)  # ceil
            room = self.max_actors - present
            return max(0, min(wanted, room, view.free_capacity))
        if view.idle_s >= self.idle_s and view.live > self.min_actors and view.starting == 0:
            return -1  # one at a time: the next call sees the smaller pool
        return 0
