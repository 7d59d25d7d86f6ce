"""The outcome of one simulation request, the one type that crosses every process boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "failed", "timeout", "invalid"]
STATUSES: tuple[Status, ...] = ("ok", "failed", "timeout", "invalid")


@dataclass(frozen=True)
class SimResult:
    """`ok` has every metric; `failed` (ngspice error, no convergence, missing measurement),
    `timeout` (wall-clock limit, process replaced) and `invalid` (parameters refused before
    anything ran) carry a short reason and score 0."""

    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    elapsed_s: float = 0.0
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "metrics": dict(self.metrics),
            "reason": self.reason,
            "elapsed_s": self.elapsed_s,
            "worker": self.worker,
        }
