"""When the soak injects each fault: a pure function of the seed, the clock and the training's
progress, so that a soak can be replayed and the rule tested without Ray.

Simulation actors die on a Poisson clock. A rollout actor or a learner rank (in turn, the first
picked by the seed) dies after every `death_every_updates` learner updates, at a seeded moment of
the step that follows: a death only once the run has made progress since the last one, so that
the soak measures recovery rather than a run that never gets anywhere. The second node joins and
leaves on a fixed period.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

SIM_ACTOR, ROLLOUT, LEARNER, NODE = "sim_actor_killed", "rollout_actor_killed", "learner_rank_killed", "node"
DEATHS = (ROLLOUT, LEARNER)


@dataclass
class FaultSchedule:
    seed: int
    sim_kill_every_s: float = 5.0
    death_every_updates: int = 2
    death_delay_s: float = 4.0  # a death falls anywhere in this long after its turn comes
    node_every_s: float = 40.0
    rng: random.Random = field(init=False)
    next_sim_kill: float = field(init=False)
    next_node: float = field(init=False)
    next_death: str = field(init=False)
    death_at: float | None = field(init=False, default=None)
    updates_at_last_death: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.sim_kill_every_s <= 0 or self.node_every_s <= 0 or self.death_every_updates < 0:
            raise ValueError("sim_kill_every_s and node_every_s must be > 0, death_every_updates >= 0")
        self.rng = random.Random(self.seed)
        self.next_sim_kill = self.rng.expovariate(1 / self.sim_kill_every_s)
        self.next_node = self.node_every_s
        self.next_death = self.rng.choice(DEATHS)

    def due(self, now: float, updates: int) -> list[str]:
        """The faults due at `now` (seconds since the soak began), `updates` learner updates in."""
        kinds = []
        if now >= self.next_sim_kill:
            kinds.append(SIM_ACTOR)
            self.next_sim_kill = now + self.rng.expovariate(1 / self.sim_kill_every_s)
        turn = self.death_every_updates and updates >= self.updates_at_last_death + self.death_every_updates
        if turn and self.death_at is None:
            self.death_at = now + self.rng.uniform(0, self.death_delay_s)
        if self.death_at is not None and now >= self.death_at:
            kinds.append(self.next_death)
            self.next_death = LEARNER if self.next_death == ROLLOUT else ROLLOUT
            self.death_at, self.updates_at_last_death = None, updates
        if now >= self.next_node:
            kinds.append(NODE)
            self.next_node = now + self.node_every_s
        return kinds
