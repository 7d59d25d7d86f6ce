"""Trade-off fronts: where the default query rule (`front`) draws its witnesses (SPEC section 2).

A task's front is built once, by sampling designs across the whole box (a Latin hypercube in
each parameter's scale), simulating them, and keeping the *eligible* ones (every spec metric
finite; every `fixed` spec met at its nominal target; every other spec missed by at most its
`span`, by default a range spec's beta and no limit for min/max) that no other eligible design
beats on every trade-off spec (the `min`/`max` specs that are not fixed, each in its own
direction; for a task with range specs, only a design whose range metrics lie within half a
window of another's can beat it, so that each window has its own front). Optional refinement
rounds sample around the front to fill it in.

Witnesses are spread along the front, not crowded where sampling happened to be dense: the
front is cut into cells (a greedy cover in which no member lies farther than `cell` x beta from
its cell's centre, in every spec's own shortfall units), a query picks a cell uniformly and then
one of its members. One member in five (by a hash of its sample index) serves evaluation queries
only, the others training queries only, so an evaluation witness is never a training witness.

Every sampled design is kept with its metrics: the `constant` baseline chooses among them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from simworkers.result import SimResult
from simworkers.task import Param, Spec, Task, shortfall

EVAL_SHARE = 5  # one front member in EVAL_SHARE serves evaluation queries
REFINE_STEP = 0.05  # a refinement sample moves each coordinate by this share of its range (sd)
Origin = str  # "sample", "refine", "reference" or "centre"


class FrontError(RuntimeError):
    """A front that cannot give witnesses: too few eligible designs; the message says what to change."""


def latin_hypercube(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """n points in [0, 1)^dims, one in each of n strata per dimension."""
    strata = np.stack([rng.permutation(n) for _ in range(dims)], axis=1)
    return (strata + rng.random((n, dims))) / n


def to_unit(p: Param, value: float) -> float:
    """A parameter value as its place in the range, in the parameter's scale: 0 = lo, 1 = hi."""
    if p.scale == "log":
        return (math.log(value) - math.log(p.lo)) / (math.log(p.hi) - math.log(p.lo))
    return (value - p.lo) / (p.hi - p.lo)


def from_unit(p: Param, u: float) -> float:
    u = min(1.0, max(0.0, float(u)))
    value = (
        math.exp(math.log(p.lo) + u * (math.log(p.hi) - math.log(p.lo)))
        if p.scale == "log"
        else p.lo + u * (p.hi - p.lo)
    )
    return min(p.hi, max(p.lo, value))


def centre_design(task: Task) -> dict[str, float]:
    """The middle of every range (geometric for log parameters): the `centre` baseline."""
    return {p.name: from_unit(p, 0.5) for p in task.params}


def _rng(task: Task, stream: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(task.name.encode()), 0xF0, stream])


def sample_designs(task: Task, n: int) -> list[dict[str, float]]:
    units = latin_hypercube(n, len(task.params), _rng(task, 0))
    return [{p.name: from_unit(p, u) for p, u in zip(task.params, row)} for row in units]


def eligible(task: Task, metrics: dict[str, float] | None) -> bool:
    """A design that can be a witness: every spec metric finite (positive for a log spec), every
    fixed spec met at its nominal target, every other spec missed by at most its span."""
    if metrics is None:
        return False
    for spec in task.specs:
        value = metrics.get(spec.metric)
        if value is None or not math.isfinite(value) or (spec.log and value <= 0):
            return False
        if spec.fixed and shortfall(spec, value) > 0:
            return False
        limit = span_of(spec)
        if not spec.fixed and limit is not None and shortfall(spec, value) > limit:
            return False
    return True


def span_of(spec: Spec) -> float | None:
    """How far a witness may miss the spec's nominal target (shortfall units): its `span`; for a
    range spec by default its beta (a window within reach), for min/max by default no limit."""
    if spec.span is not None:
        return spec.span
    return spec.beta if spec.kind == "range" else None


def trade_specs(task: Task) -> list[Spec]:
    """The specs a query's targets trade off: min/max specs that are not fixed."""
    return [s for s in task.specs if s.kind != "range" and not s.fixed]


def _level(spec: Spec, value: float) -> float:
    """The metric in the spec's own shortfall units (log-ratio or relative), smaller is better."""
    if spec.log:
        g = math.log(value)
    else:
        scale = spec.scale if spec.scale is not None else abs(spec.lo if spec.kind == "min" else spec.hi)
        g = value / scale
    return -g if spec.kind == "min" else g


def _position(spec: Spec, value: float) -> float:
    """A range metric's place, in window widths (log for a log spec)."""
    if spec.log:
        return math.log(value / spec.lo) / math.log(spec.hi / spec.lo)
    return (value - spec.lo) / (spec.hi - spec.lo)


def non_dominated(levels: np.ndarray, places: np.ndarray | None = None, reach: float = 0.5) -> np.ndarray:
    """Mask of the rows that no other row beats (<= everywhere, < somewhere; smaller is better).
    With `places` (range metrics, in window widths), only a row within `reach` of another on
    every place can beat it: the front of each window's neighbourhood, so that a query asking for
    a window away from the nominal one still has witnesses there."""
    keep = np.ones(len(levels), dtype=bool)
    for i in range(len(levels)):
        beaten = np.all(levels <= levels[i], axis=1) & np.any(levels < levels[i], axis=1)
        if places is not None and places.shape[1]:
            beaten &= np.all(np.abs(places - places[i]) <= reach, axis=1)
        keep[i] = not beaten.any()
    return keep


def cover_cells(coords: np.ndarray, width: float) -> np.ndarray:
    """Greedy cover: centres chosen farthest-first until every point lies within `width` (max
    norm) of one; each point's cell is its nearest centre. Deterministic (starts at row 0)."""
    if len(coords) == 0:
        return np.zeros(0, dtype=int)
    centres = [0]
    dist = np.max(np.abs(coords - coords[0]), axis=1)
    while dist.max() > width:
        far = int(dist.argmax())
        centres.append(far)
        dist = np.minimum(dist, np.max(np.abs(coords - coords[far]), axis=1))
    to_centre = np.max(np.abs(coords[:, None, :] - coords[centres][None, :, :]), axis=2)
    return to_centre.argmin(axis=1)


@dataclass
class Front:
    """Every design sampled for a task, its metrics (None when it did not simulate), and which
    ones are on the front, in which cell, for which split."""

    task: str
    fingerprint: str
    designs: list[dict[str, float]]
    metrics: list[dict[str, float] | None]
    origin: list[Origin]
    on_front: np.ndarray  # bool per design
    cell: np.ndarray  # int per design, -1 off the front
    split: list[str]  # "train", "eval" or "" (off the front)

    def members(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.split) if s == split]

    def cells(self, split: str) -> dict[int, list[int]]:
        """The split's members by cell (computed once: a front is not changed after assembly)."""
        cache = self.__dict__.setdefault("_cells", {})
        if split not in cache:
            out: dict[int, list[int]] = {}
            for i in self.members(split):
                out.setdefault(int(self.cell[i]), []).append(i)
            cache[split] = out
        return cache[split]

    @property
    def size(self) -> int:
        return int(self.on_front.sum())

    @property
    def n_cells(self) -> int:
        return len({int(c) for c in self.cell if c >= 0})

    def simulated(self) -> list[int]:
        """Indices of the designs that simulated with every metric: the `constant` candidates."""
        return [i for i, m in enumerate(self.metrics) if m is not None]

    def index_of(self, origin: Origin) -> int:
        return self.origin.index(origin)

    def summary(self) -> str:
        ok = len(self.simulated())
        return (
            f"{len(self.designs)} designs ({ok} simulated), front {self.size} in {self.n_cells} cells, "
            f"{len(self.members('train'))} training / {len(self.members('eval'))} evaluation witnesses"
        )


def _split_of(index: int) -> str:
    return "eval" if zlib.crc32(index.to_bytes(4, "little")) % EVAL_SHARE == 0 else "train"


def assemble(task: Task, designs: list[dict], results: list[SimResult], origin: list[Origin]) -> Front:
    """The front of simulated designs: eligibility, non-dominated set, cells and splits."""
    metrics = [dict(r.metrics) if r.ok else None for r in results]
    ok = [i for i, m in enumerate(metrics) if origin[i] in ("sample", "refine") and eligible(task, m)]
    trade = trade_specs(task)
    on_front = np.zeros(len(designs), dtype=bool)
    cell = np.full(len(designs), -1, dtype=int)
    split = [""] * len(designs)
    if ok:
        levels = np.array([[_level(s, metrics[i][s.metric]) for s in trade] for i in ok]).reshape(len(ok), len(trade))
        ranges = [s for s in task.specs if s.kind == "range" and not s.fixed]
        places = np.array([[_position(s, metrics[i][s.metric]) for s in ranges] for i in ok]).reshape(len(ok), -1)
        members = [i for i, keep in zip(ok, non_dominated(levels, places)) if keep]
        coords = np.array(
            [
                [_level(s, metrics[i][s.metric]) / s.beta for s in trade]
                + [_position(s, metrics[i][s.metric]) / s.beta for s in ranges]
                for i in members
            ]
        ).reshape(len(members), len(trade) + len(ranges))
        for i, c in zip(members, cover_cells(coords, task.front.cell)):
            on_front[i], cell[i], split[i] = True, int(c), _split_of(i)
    return Front(task.name, task.fingerprint, designs, metrics, origin, on_front, cell, split)


def _perturb(task: Task, design: dict, rng: np.random.Generator) -> dict[str, float]:
    return {p.name: from_unit(p, to_unit(p, design[p.name]) + rng.normal(0, REFINE_STEP)) for p in task.params}


FrontBuild = Generator[list[dict], list[SimResult], Front]


def front_build(task: Task) -> FrontBuild:
    """The build as a generator: it yields each batch of designs to simulate, is sent their
    results, and returns the front. `build_front` drives it with a blocking runner, `QuerySource`
    with a run's asynchronous pool. The reference and centre designs are simulated too (the
    baselines of those names read them)."""
    n = task.front.sample_count(len(task.params))
    designs = [task.reference(), centre_design(task), *sample_designs(task, n)]
    origin: list[Origin] = ["reference", "centre"] + ["sample"] * n
    results = list((yield designs))
    for round_ in range(task.front.refine):
        front = assemble(task, designs, results, origin)
        parents = [i for i in range(len(designs)) if front.on_front[i]]
        if not parents:
            break
        rng = _rng(task, 1 + round_)
        extra = [_perturb(task, designs[parents[rng.integers(len(parents))]], rng) for _ in range(n // 2)]
        designs += extra
        origin += ["refine"] * len(extra)
        results += list((yield extra))
    front = assemble(task, designs, results, origin)
    check_front(task, front)
    return front


def design_key(design: dict[str, float]) -> tuple:
    return tuple(sorted(design.items()))


def build_front(
    task: Task,
    run_many: Callable[[Task, list[dict]], list[SimResult]],
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 64,
    known: dict[tuple, SimResult] | None = None,
) -> Front:
    """The task's front, simulated by `run_many` (a list of designs, run in parallel) in chunks.
    `known` holds results already simulated for this circuit (a stale front of the same task
    whose specs alone changed: `stored_results`); those designs are not simulated again."""
    known = known or {}
    build = front_build(task)
    designs = next(build)
    while True:
        todo = [d for d in designs if design_key(d) not in known]
        fresh: list[SimResult] = []
        for first in range(0, len(todo), chunk):
            fresh += run_many(task, todo[first : first + chunk])
            if on_progress:
                on_progress(len(todo[first : first + chunk]))
        if on_progress and len(todo) < len(designs):
            on_progress(len(designs) - len(todo))
        made = iter(fresh)
        results = [known[design_key(d)] if design_key(d) in known else next(made) for d in designs]
        try:
            designs = build.send(results)
        except StopIteration as done:
            return done.value


def check_front(task: Task, front: Front) -> None:
    for split in ("train", "eval"):
        if not front.members(split):
            raise FrontError(
                f"task {task.name}: the trade-off front has no {split} witness ({front.summary()}): "
                "too few sampled designs are eligible (every spec metric finite, fixed specs met, range "
                "metrics near their window); sample more (front.samples), refine (front.refine) or widen "
                "the ranges, and check `tlgrpo simulate " + task.name + " --reference`"
            )


def front_cost(task: Task) -> int:
    """Simulations a front costs: the samples, the refinement rounds, the reference and centre."""
    n = task.front.sample_count(len(task.params))
    return 2 + n + task.front.refine * (n // 2)
