"""Episodes: one query, at most `budget` simulations, every turn recorded.

Turn 0 is the query's initial design (simulated, shown to the agent, reported apart). Turns 1..
are the agent's: a simulated design, a <Design End>, or a malformed reply. The headline value of
an episode is the best score over its proposed designs (docs/results.md reports it per task).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

from simworkers.query import Query
from simworkers.result import SimResult
from simworkers.task import Task
from system.agent.reward import score_result

Simulate = Callable[[Task, dict], Awaitable[SimResult]]
Protocol = Literal["multi-turn", "st-iter"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)


@dataclass
class Turn:
    index: int
    action: Literal["initial", "call", "end", "none", "over_budget"]
    design: dict | None = None
    result: SimResult | None = None
    score: float = 0.0  # evaluation score: no format penalty
    format_ok: bool = True
    errors: list[str] = field(default_factory=list)
    reply: str = ""
    action_span: tuple[int, int] | None = None  # where the action's tokens lie in Episode.ids
    served: dict | None = None  # a server's reply as it came (content, tool calls, finish reason): openai: policies

    @property
    def simulated(self) -> bool:
        return self.result is not None and self.action in ("initial", "call")


@dataclass
class Episode:
    task: str
    seed: int
    policy: str
    protocol: Protocol
    budget: int
    turns: list[Turn] = field(default_factory=list)  # turns[0] is the initial design
    ids: list[int] = field(default_factory=list)  # token ids end to end, for token policies
    failure: str = ""  # an infrastructure fault ended it early (an endpoint down after its retries): not scored
    cut: bool = False  # the history outgrew the model's context and the episode ended there: scored as it stands

    @property
    def initial_score(self) -> float:
        return self.turns[0].score

    @property
    def designs(self) -> list[Turn]:
        """The agent's simulated designs, in order (turn 0 excluded)."""
        return [t for t in self.turns[1:] if t.simulated]

    @property
    def simulations(self) -> int:
        return sum(t.simulated for t in self.turns)

    @property
    def best_score(self) -> float:
        """Best score over the proposed designs; 0 when the agent proposed none."""
        return max((t.score for t in self.designs), default=0.0)

    def per_turn(self) -> tuple[list[float | None], list[float]]:
        """Score of the k-th proposed design (None after the episode ended) and the best so far
        including turn 0, for k = 1..budget."""
        scores = [t.score for t in self.designs]
        turn_scores: list[float | None] = [scores[k] if k < len(scores) else None for k in range(self.budget)]
        best, history = self.initial_score, []
        for k in range(self.budget):
            if k < len(scores):
                best = max(best, scores[k])
            history.append(best)
        return turn_scores, history

    def to_json(self) -> dict:
        turns = []
        for t in self.turns:
            row = asdict(t)
            row["result"] = t.result.to_dict() if t.result else None
            turns.append(row)
        return {
            "task": self.task,
            "seed": self.seed,
            "policy": self.policy,
            "protocol": self.protocol,
            "budget": self.budget,
            "initial_score": self.initial_score,
            "best_score": self.best_score,
            "simulations": self.simulations,
            "turns": turns,
            "n_tokens": len(self.ids),
            "failure": self.failure,
            "cut": self.cut,
        }

    @classmethod
    def from_json(cls, row: dict) -> Episode:
        """An episode as `to_json` wrote it, without its token ids (they are not written)."""
        turns = []
        for t in row["turns"]:
            result = SimResult(**t["result"]) if t["result"] is not None else None
            span = tuple(t["action_span"]) if t["action_span"] is not None else None
            turns.append(Turn(**{**t, "result": result, "action_span": span}))
        keys = ("task", "seed", "policy", "protocol", "budget")
        return cls(**{k: row[k] for k in keys}, turns=turns, failure=row.get("failure", ""), cut=row.get("cut", False))


async def start_episode(
    task: Task, query: Query, policy: str, protocol: Protocol, budget: int, simulate: Simulate
) -> Episode:
    """An episode with turn 0 simulated: the initial design every method starts from."""
    result = await simulate(task, query.initial)
    episode = Episode(task.name, query.seed, policy, protocol, budget)
    episode.turns.append(Turn(0, "initial", dict(query.initial), result, score_result(query.specs, result).value))
    return episode
