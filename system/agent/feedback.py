"""Plain-text accounts of a simulated design: every metric, each spec met or missed by how much.

The same words serve the CLI and, later, the agent's tool responses.
"""

from __future__ import annotations

from simworkers.result import SimResult
from simworkers.task import Spec, Task
from simworkers.units import format_si
from system.agent.reward import Score, SpecOutcome


def metric_text(task: Task, name: str, value: float) -> str:
    unit = task.metric(name).unit
    if unit in ("dB", "dBohm", "deg", "V/V", "V/A", "ppm/C", ""):
        return f"{value:.4g} {unit}".strip()
    return format_si(value, unit)


def spec_rule(task: Task, spec: Spec) -> str:
    """A spec in words with units: "power <= 15u W", "38 dB <= gain_db <= 42 dB"."""
    if spec.kind == "min":
        return f"{spec.metric} >= {metric_text(task, spec.metric, spec.lo)}"
    if spec.kind == "max":
        return f"{spec.metric} <= {metric_text(task, spec.metric, spec.hi)}"
    return f"{metric_text(task, spec.metric, spec.lo)} <= {spec.metric} <= {metric_text(task, spec.metric, spec.hi)}"


def spec_text(task: Task, outcome: SpecOutcome) -> str:
    spec = outcome.spec
    rule = spec_rule(task, spec)
    if outcome.value is None:
        return f"{rule}: not measured, missed (score 0)"
    got = metric_text(task, spec.metric, outcome.value)
    if outcome.met:
        return f"{rule}: {got}, met"
    how = "log-ratio" if spec.log else "normalised shortfall"
    return f"{rule}: {got}, missed by {outcome.shortfall:.3g} ({how}), spec score {outcome.score:.3f}"


def result_lines(task: Task, result: SimResult, score: Score) -> list[str]:
    lines = [f"status: {result.status}" + (f" ({result.reason})" if result.reason else "")]
    for metric in task.metrics:
        if metric.name in result.metrics:
            lines.append(f"{metric.name} = {metric_text(task, metric.name, result.metrics[metric.name])}")
    lines += [spec_text(task, o) for o in score.outcomes]
    lines.append(f"score: {score.value:.4f}")
    return lines
