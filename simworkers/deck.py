"""What ngspice reads and what it prints back, for both backends.

A deck is the process include, one `.param` line per tunable parameter (values written by
`spice_number` only), the task's circuit, and a control script that runs each testbench step and
echoes every metric as `@@metric NAME VALUE`. Parsing trusts nothing but those lines, and any
`Error`, `Fatal` or `too small` line fails the whole result, whatever the exit code says.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from simworkers.pdk import get_process
from simworkers.spectrum import DERIVED_KINDS, WaveformError
from simworkers.task import Task
from simworkers.units import spice_number

METRIC_TAG = "@@metric"
WAVE_TAG = "@@wave"  # a whole vector, for the metrics our code derives from it
_FAILURE = re.compile(r"\berror\b|\bfatal\b|too small|singular matrix|cannot recover|failed!", re.I)
_UNRECOVERABLE = re.compile(r"cannot recover|awaits to be detached|ngspice.dll cannot", re.I)


def param_lines(params: dict[str, float]) -> list[str]:
    return [f".param {name}={spice_number(value)}" for name, value in params.items()]


def circuit_text(task: Task, params: dict[str, float]) -> str:
    """Title, models, parameters and circuit: everything but the control script."""
    include = get_process(task.process).require()
    return "\n".join(
        [f"* tl-grpo task {task.name}", f".include '{include}'", *param_lines(params), task.circuit.strip(), ""]
    )


def control_lines(task: Task) -> list[str]:
    lines: list[str] = []
    for step in task.testbench:
        lines.extend(step.commands)
        lines.extend(f'echo "{METRIC_TAG} {metric} $&{metric}"' for metric in step.emits)
        vectors = dict.fromkeys(d.vector for d in step.derive)  # each once, in order
        lines.extend(f"echo {WAVE_TAG} {vector} $&{vector}" for vector in vectors)
    return lines


def batch_deck(task: Task, params: dict[str, float]) -> str:
    """A whole file for `ngspice -b`."""
    return "\n".join(
        [
            circuit_text(task, params).rstrip(),
            ".control",
            "set num_threads=1",
            *control_lines(task),
            ".endc",
            ".end",
            "",
        ]
    )


@dataclass(frozen=True)
class Parsed:
    metrics: dict[str, float]
    failure: str  # "" when the output holds no failure line and every metric
    unrecoverable: bool  # the shared library said it cannot go on: replace the process


def parse_output(task: Task, lines: list[str]) -> Parsed:
    metrics: dict[str, float] = {}
    failure = ""
    unrecoverable = False
    waves: dict[str, list[float]] = {}
    for line in lines:
        text = line.strip().strip('"')  # ngspice quotes an echo that expands a vector
        if text.startswith(WAVE_TAG):
            parts = text.split()
            try:
                waves[parts[1]] = [float(v) for v in parts[2:]]
            except (IndexError, ValueError):
                pass  # a vector that did not print as numbers: its metrics are missing
            continue
        if text.startswith(METRIC_TAG):
            parts = text.split()
            if len(parts) == 3:
                try:
                    metrics[parts[1]] = float(parts[2])
                except ValueError:
                    pass
            continue
        if _UNRECOVERABLE.search(text):
            unrecoverable = True
        if not failure and _FAILURE.search(text):
            failure = text[:300]
    for step in task.testbench:
        for d in step.derive:
            if d.vector not in waves:
                continue  # missing, below
            try:
                metrics[d.metric] = DERIVED_KINDS[d.kind](waves[d.vector], d.signal_bin)
            except WaveformError as exc:
                failure = failure or f"{d.metric}: {exc}"
    wanted = [m.name for m in task.metrics]
    if not failure:
        missing = [m for m in wanted if m not in metrics]
        bad = [m for m in wanted if m in metrics and not math.isfinite(metrics[m])]
        if missing:
            failure = f"measurement missing: {', '.join(missing)}"
        elif bad:
            failure = f"measurement not finite: {', '.join(bad)}"
    return Parsed({m: metrics[m] for m in wanted if m in metrics}, failure, unrecoverable)
