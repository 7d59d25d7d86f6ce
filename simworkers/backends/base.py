"""The part of a backend that does not depend on how ngspice runs."""

from __future__ import annotations

import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from simworkers.deck import parse_output
from simworkers.result import SimResult
from simworkers.task import Task
from simworkers.validate import InvalidParams, validate_params


@dataclass(frozen=True)
class RunOutput:
    lines: list[str]
    timed_out: bool = False
    crashed: str = ""  # the simulator process died or could not start: why


class Backend(ABC):
    name = "base"

    def __init__(self, timeout_s: float | None = None):
        self.timeout_override = timeout_s
        self.worker = f"{socket.gethostname()}:{os.getpid()}/{self.name}"

    def simulate(self, task: Task, raw_params: Mapping[str, object]) -> SimResult:
        start = time.perf_counter()
        try:
            params = validate_params(task, raw_params)
        except InvalidParams as exc:
            return SimResult("invalid", {}, str(exc)[:500], time.perf_counter() - start, self.worker)
        limit = self.timeout_override or task.timeout_s
        out = self._run(task, params, limit)
        elapsed = time.perf_counter() - start
        if out.timed_out:
            return SimResult("timeout", {}, f"no result within {limit:g} s; simulator replaced", elapsed, self.worker)
        if out.crashed:
            return SimResult("failed", {}, out.crashed, elapsed, self.worker)
        parsed = parse_output(task, out.lines)
        if parsed.unrecoverable:
            self._replace()
        if parsed.failure:
            self._after_failure()
            return SimResult("failed", parsed.metrics, parsed.failure, elapsed, self.worker)
        return SimResult("ok", parsed.metrics, "", elapsed, self.worker)

    @abstractmethod
    def _run(self, task: Task, params: dict[str, float], timeout_s: float) -> RunOutput:
        """Run one validated design; kill whatever runs it if it passes timeout_s."""

    def _after_failure(self) -> None:
        """A failed design may leave simulator state behind (ngspice can drop its whole deck)."""

    def _replace(self) -> None:
        """Drop the simulator process so that the next request starts a fresh one."""

    def close(self) -> None:
        self._replace()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
