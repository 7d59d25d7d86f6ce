"""Parameters are checked against the task before any netlist is written.

Names must be the task's, values finite numbers (or SI strings converted by `units`), inside the
parameter's range. Nothing else from a request ever reaches ngspice.
"""

from __future__ import annotations

from collections.abc import Mapping

from simworkers.task import Task
from simworkers.units import QuantityError, parse_quantity


class InvalidParams(ValueError):
    """Every problem with one request, each naming the parameter."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def validate_params(task: Task, raw: Mapping[str, object], *, complete: bool = True) -> dict[str, float]:
    """Return {name: float} in the task's parameter order, or raise InvalidParams."""
    if not isinstance(raw, Mapping):
        raise InvalidParams([f"parameters must be a mapping of name to value, got {type(raw).__name__}"])
    problems: list[str] = []
    known = set(task.param_names)
    for name in raw:
        if name not in known:
            shown = repr(name)[:40]
            problems.append(f"unknown parameter {shown} (task {task.name} has {', '.join(task.param_names)})")
    values: dict[str, float] = {}
    for param in task.params:
        if param.name not in raw:
            if complete:
                problems.append(f"{param.name}: missing")
            continue
        try:
            value = parse_quantity(raw[param.name], param.unit)
        except QuantityError as exc:
            problems.append(f"{param.name}: {exc}")
            continue
        if not param.lo <= value <= param.hi:
            problems.append(f"{param.name}: {value:g} {param.unit} is outside [{param.lo:g}, {param.hi:g}]")
            continue
        values[param.name] = value
    if problems:
        raise InvalidParams(problems)
    return values
