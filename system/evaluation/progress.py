"""Progress of counted work (an evaluation's episodes, a dataset's queries): a live bar on a
terminal; on a log (a pipe, `ray job logs`, CI) a plain line each tenth of the work, since a bar
that redraws shows nothing there."""

from __future__ import annotations

import sys
import time


class WorkProgress:
    def __init__(self, total: int, done: int = 0, label: str = "episodes", stream=None):
        self.total, self.done, self.label = total, done, label
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self._bar = None
        self._next_line = done + max(1, total // 10)

    def __enter__(self) -> WorkProgress:
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

            columns = (
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._bar = Progress(*columns, console=Console(file=self.stream))
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done)
        elif self.done:
            self._line()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)
        elif self.done >= self._next_line or self.done == self.total:
            self._line()
            self._next_line = self.done + max(1, self.total // 10)

    def _line(self) -> None:
        elapsed = time.monotonic() - self.started
        print(f"{self.label}: {self.done}/{self.total} done, {elapsed:.0f} s", file=self.stream, flush=True)
