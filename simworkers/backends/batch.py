"""`ngspice -b` once per design: no state survives between designs, about 10 ms of start-up."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from simworkers.backends.base import Backend, RunOutput
from simworkers.deck import batch_deck
from simworkers.task import Task


class BatchBackend(Backend):
    name = "batch"

    def __init__(self, timeout_s: float | None = None, ngspice: str | None = None):
        super().__init__(timeout_s)
        self.ngspice = ngspice or shutil.which("ngspice")
        if self.ngspice is None:
            raise RuntimeError("ngspice is not on PATH: install the Debian package 'ngspice'")
        self._dir = tempfile.TemporaryDirectory(prefix="tlgrpo-ngspice-")

    def _run(self, task: Task, params: dict[str, float], timeout_s: float) -> RunOutput:
        deck = Path(self._dir.name) / f"{task.name}.sp"
        deck.write_text(batch_deck(task, params))
        try:
            proc = subprocess.run(
                # `timeout` bounds an ngspice that outlives this process (its actor killed mid-run)
                ["timeout", "-s", "KILL", f"{timeout_s + 5:g}", self.ngspice, "-b", str(deck)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                errors="replace",
                cwd=self._dir.name,  # where ngspice's models write their check files
            )
        except subprocess.TimeoutExpired:  # subprocess.run has killed ngspice already
            return RunOutput([], timed_out=True)
        return RunOutput(proc.stdout.splitlines() + proc.stderr.splitlines())

    def close(self) -> None:
        self._dir.cleanup()
