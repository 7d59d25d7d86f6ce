"""Circuit tasks as checked dataclasses (read from task files by simworkers/taskfile.py, found by
name by simworkers/catalog.py).

A task names its tunable parameters (unit, range, scale, reference value), the testbench steps
that measure each metric, and the specs. The netlist template refers to parameters as `{name}`;
our code writes their values as `.param` lines, so the netlist itself never holds model text.
Every mistake in a task file is reported with the file, the field and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


class TaskError(ValueError):
    """A task file that cannot be used; the message names the file, the field and the fix."""

    def __init__(self, path: Path | str, field_name: str, problem: str, fix: str):
        self.path, self.field, self.problem, self.fix = str(path), field_name, problem, fix
        super().__init__(f"{path}: field '{field_name}': {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Param:
    name: str
    unit: str
    lo: float
    hi: float
    scale: Literal["log", "linear"]
    reference: float
    description: str = ""


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    description: str = ""


@dataclass(frozen=True)
class Spec:
    """metric >= lo (kind min), metric <= hi (max), or lo <= metric <= hi (range)."""

    metric: str
    kind: Literal["min", "max", "range"]
    lo: float | None
    hi: float | None
    margin: float = 0.1  # queries move the targets by up to this fraction
    scale: float | None = None  # shortfall divisor; None = |target| (min/max) or width (range)
    log: bool = False  # shortfall as a log-ratio instead of a difference
    alpha: float = 0.05
    beta: float = 0.5
    c: float = 0.1
    # fixed: every query keeps the nominal target (a requirement such as phase margin, not a
    # trade-off); witnesses on the trade-off front must meet it (simworkers/front.py)
    fixed: bool = False
    # how far (shortfall units: a range's window widths, a log-ratio, a relative miss) the front's
    # witnesses may miss the nominal target, so that queries stay about working designs (and a
    # range's windows lie within reach); None: a range spec's beta, no limit for min/max
    span: float | None = None


def shortfall(spec: Spec, value: float) -> float:
    """How far `value` is outside the spec, normalised; <= 0 when met, inf when not a number."""
    if not math.isfinite(value):
        return math.inf
    if spec.log:
        if value <= 0:
            return math.inf
        below = math.log(spec.lo / value) if spec.lo is not None else -math.inf
        above = math.log(value / spec.hi) if spec.hi is not None else -math.inf
        return max(below, above)
    if spec.scale is not None:
        scale = spec.scale
    elif spec.kind == "range":
        scale = spec.hi - spec.lo
    else:
        scale = abs(spec.lo if spec.kind == "min" else spec.hi)
    below = (spec.lo - value) if spec.lo is not None else -math.inf
    above = (value - spec.hi) if spec.hi is not None else -math.inf
    return max(below, above) / scale


@dataclass(frozen=True)
class Derived:
    """A metric our code computes from a whole vector that the step echoes: a coherent FFT's
    SNDR, ENOB or SFDR of sampled outputs, or max |DNL| / |INL| of a transfer curve
    (simworkers/spectrum.py)."""

    metric: str
    kind: Literal["sndr_db", "enob", "sfdr_db", "dnl", "inl"]
    vector: str
    signal_bin: int | None = None  # the signal's FFT bin (cycles in the record); None: the largest


@dataclass(frozen=True)
class Step:
    """Control-language lines (an analysis and the `meas`/`let` lines on its vectors), then the
    metrics they define, echoed while that analysis's vectors are current, and those derived
    from whole vectors."""

    commands: tuple[str, ...]
    emits: tuple[str, ...]
    derive: tuple[Derived, ...] = ()


@dataclass(frozen=True)
class FrontSettings:
    """How query rule `front` builds the task's trade-off front (simworkers/front.py)."""

    samples: int | None = None  # designs sampled across the box; None: max(1000, 80 per parameter)
    refine: int = 0  # rounds of local samples around the front, each half as many as `samples`
    cell: float = 0.5  # witnesses are spread over cells this wide, in units of each spec's beta

    def sample_count(self, n_params: int) -> int:
        return self.samples if self.samples is not None else max(1000, 80 * n_params)


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    process: str
    domain: Literal["in", "out"]
    circuit: str
    params: tuple[Param, ...]
    metrics: tuple[Metric, ...]
    testbench: tuple[Step, ...]
    specs: tuple[Spec, ...]
    timeout_s: float = 10.0
    show_netlist: bool = False
    path: str = ""
    family: str = ""  # tasks sharing one netlist on several processes share a family
    witness_spread: float = 0.2  # near-reference rule: witnesses within this fraction of the reference
    front: FrontSettings = field(default_factory=FrontSettings)
    fingerprint: str = ""  # of the task file and netlist: a dataset built from another is refused
    # of what a simulation's result depends on (netlist, process, testbench, parameter names,
    # time limit), not the specs: a front's simulations are reused when only the specs changed
    sim_fingerprint: str = ""
    _by_name: dict[str, Param] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.params})

    def param(self, name: str) -> Param:
        return self._by_name[name]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def reference(self) -> dict[str, float]:
        return {p.name: p.reference for p in self.params}

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)
