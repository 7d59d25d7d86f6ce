"""Task files: a task file (YAML) plus a netlist template, parsed into a checked `Task`.

Every mistake in a task file is reported with the file, the field and the fix (`TaskError`).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import yaml

from simworkers.pdk import PROCESSES
from simworkers.spectrum import DERIVED_KINDS
from simworkers.task import Derived, FrontSettings, Metric, Param, Spec, Step, Task, TaskError

TASK_FILE = "task.yaml"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VECTOR = re.compile(r"[a-z][a-z0-9_]*", re.I)  # echoed whole as $&NAME
# ngspice reads these as functions or constants inside expressions: a parameter so named breaks
# parsing (a parameter called `ln` does, for one).
_RESERVED = frozenset(
    """ln log log10 exp sqrt sin cos tan asin acos atan sinh cosh tanh abs min max pow pwr sgn int
    nint floor ceil gauss agauss unif aunif limit pi e temper hertz time u if ternary_fcn vdd gnd all""".split()
)
_FORBIDDEN_NETLIST = re.compile(r"^\s*\.(control|endc|end)\b", re.I | re.M)
_NETLIST_VAR = re.compile(r"@([a-z_][a-z0-9_]*)@")


def parse_task_file(path: Path) -> Task:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TaskError(path, "<file>", f"not valid YAML ({exc})", "correct the YAML syntax") from None
    return _Parser(path).task(raw)


class _Parser:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, field_name: str, problem: str, fix: str) -> TaskError:
        return TaskError(self.path, field_name, problem, fix)

    def get(self, raw: dict, key: str, where: str, kind: type | tuple, default: Any = ...) -> Any:
        name = f"{where}{key}"
        if key not in raw:
            if default is ...:
                raise self.fail(name, "missing", f"add '{key}:' to the task file")
            return default
        value = raw[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is float and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.fail(name, f"{value!r} is not a number", "write a plain number") from None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(
                name, f"expected {expected}, got {type(value).__name__}", f"give '{key}' a {expected} value"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(name, "not finite", "give a finite number")
        return value

    def task(self, raw: Any) -> Task:
        if not isinstance(raw, dict):
            raise self.fail("<file>", "the task file is not a mapping", "write 'key: value' fields")
        known = {
            "name",
            "description",
            "process",
            "domain",
            "netlist",
            "netlist_vars",
            "params",
            "metrics",
            "testbench",
            "specs",
            "timeout_s",
            "show_netlist",
            "family",
            "witness_spread",
            "front",
        }
        for key in raw:
            if key not in known:
                raise self.fail(str(key), "unknown field", f"use only: {', '.join(sorted(known))}")
        name = self.get(raw, "name", "", str)
        if not _NAME.match(name):
            raise self.fail("name", f"{name!r} is not a lower-case identifier", "use [a-z0-9_]")
        process = self.get(raw, "process", "", str)
        if process not in PROCESSES:
            raise self.fail("process", f"unknown process {process!r}", f"use one of {', '.join(sorted(PROCESSES))}")
        domain = self.get(raw, "domain", "", str, "in")
        if domain not in ("in", "out"):
            raise self.fail("domain", f"{domain!r} is neither 'in' nor 'out'", "write in or out")
        netlist_name = self.get(raw, "netlist", "", str)
        netlist_path = self.path.parent / netlist_name
        if not netlist_path.is_file():
            raise self.fail(
                "netlist", f"file {netlist_path} does not exist", "name the netlist template next to the task file"
            )
        circuit = self.substitute(netlist_path.read_text(), self.get(raw, "netlist_vars", "", dict, {}))
        if _FORBIDDEN_NETLIST.search(circuit):
            raise self.fail(
                "netlist",
                f"{netlist_name} has a .control/.endc/.end line",
                "keep only the circuit in the netlist; analyses go in 'testbench'",
            )
        params = self.params(self.get(raw, "params", "", list), circuit)
        metrics = self.metrics(self.get(raw, "metrics", "", dict))
        testbench = self.testbench(self.get(raw, "testbench", "", list), metrics)
        specs = self.specs(self.get(raw, "specs", "", list), metrics)
        spread = self.get(raw, "witness_spread", "", float, 0.2)
        if not 0 < spread <= 1:
            raise self.fail(
                "witness_spread", f"{spread:g} is outside (0, 1]", "use e.g. 0.2 for +-20 % around the reference"
            )
        front = self.front(self.get(raw, "front", "", dict, {}))
        timeout = self.get(raw, "timeout_s", "", float, 10.0)
        if timeout <= 0:
            raise self.fail("timeout_s", "must be positive", "give seconds > 0")
        return Task(
            name=name,
            description=self.get(raw, "description", "", str).strip(),
            process=process,
            domain=domain,
            circuit=circuit,
            params=params,
            metrics=metrics,
            testbench=testbench,
            specs=specs,
            timeout_s=timeout,
            show_netlist=self.get(raw, "show_netlist", "", bool, False),
            path=str(self.path),
            family=self.get(raw, "family", "", str, name),
            witness_spread=spread,
            front=front,
            fingerprint=hashlib.sha256(self.path.read_bytes() + b"\0" + circuit.encode()).hexdigest()[:16],
            sim_fingerprint=hashlib.sha256(
                repr((circuit, process, testbench, [p.name for p in params], timeout)).encode()
            ).hexdigest()[:16],
        )

    def front(self, raw: dict) -> FrontSettings:
        where = "front."
        for key in raw:
            if key not in ("samples", "refine", "cell"):
                raise self.fail(f"{where}{key}", "unknown field", "use only: cell, refine, samples")
        samples = self.get(raw, "samples", where, int, None)
        if samples is not None and samples < 100:
            raise self.fail(f"{where}samples", f"{samples} is below 100", "sample at least 100 designs (default 1000)")
        refine = self.get(raw, "refine", where, int, 0)
        if not 0 <= refine <= 10:
            raise self.fail(f"{where}refine", f"{refine} is outside [0, 10]", "use 0-3 rounds")
        cell = self.get(raw, "cell", where, float, 0.5)
        if not 0 < cell <= 5:
            raise self.fail(f"{where}cell", f"{cell:g} is outside (0, 5]", "use e.g. 0.5 (half a spec's beta)")
        return FrontSettings(samples, refine, cell)

    def substitute(self, circuit: str, variables: dict) -> str:
        """Fill `@name@` placeholders (device names, unit scales) so that one netlist serves
        several processes; the values come from the task file, never from a request."""
        for key, value in variables.items():
            if not isinstance(value, (str, int, float)) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", str(value)):
                raise self.fail(
                    f"netlist_vars.{key}",
                    f"{value!r} is not a plain word or number",
                    "use device names or numbers only",
                )
        missing = sorted({m for m in _NETLIST_VAR.findall(circuit) if m not in variables})
        if missing:
            raise self.fail(
                "netlist_vars",
                f"the netlist uses @{missing[0]}@ but no value is given",
                f"add {missing[0]}: ... under netlist_vars",
            )
        return _NETLIST_VAR.sub(lambda m: str(variables[m.group(1)]), circuit)

    def params(self, items: list, circuit: str) -> tuple[Param, ...]:
        if not items:
            raise self.fail("params", "empty", "list at least one tunable parameter")
        out: list[Param] = []
        for i, item in enumerate(items):
            where = f"params[{i}]."
            if not isinstance(item, dict):
                raise self.fail(f"params[{i}]", "not a mapping", "write {name: ..., lo: ..., ...}")
            name = self.get(item, "name", where, str)
            if not _NAME.match(name) or name in _RESERVED:
                raise self.fail(
                    f"{where}name",
                    f"{name!r} cannot be an ngspice parameter name",
                    "use a lower-case identifier that is not a built-in function",
                )
            if any(p.name == name for p in out):
                raise self.fail(f"{where}name", f"{name!r} appears twice", "rename one of them")
            if not re.search(rf"\b{name}\b", circuit):
                raise self.fail(
                    f"{where}name",
                    f"parameter {name!r} is absent from the netlist",
                    f"use {{{name}}} in the netlist or remove the parameter",
                )
            lo, hi = self.get(item, "lo", where, float), self.get(item, "hi", where, float)
            scale = self.get(item, "scale", where, str, "linear")
            if scale not in ("log", "linear"):
                raise self.fail(f"{where}scale", f"{scale!r} is not log or linear", "write log or linear")
            if not lo < hi:
                raise self.fail(f"{where}lo", f"lo={lo:g} is not below hi={hi:g}", "make lo < hi")
            if scale == "log" and lo <= 0:
                raise self.fail(
                    f"{where}lo", "a log-scale range must be positive", "use scale: linear or a positive lo"
                )
            ref = self.get(item, "reference", where, float)
            if not lo <= ref <= hi:
                raise self.fail(
                    f"{where}reference",
                    f"{ref:g} is outside [{lo:g}, {hi:g}]",
                    "widen the range or change the reference design",
                )
            out.append(
                Param(
                    name,
                    self.get(item, "unit", where, str, ""),
                    lo,
                    hi,
                    scale,
                    ref,
                    self.get(item, "description", where, str, ""),
                )
            )
        return tuple(out)

    def metrics(self, items: dict) -> tuple[Metric, ...]:
        out = []
        for name, item in items.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise self.fail(f"metrics.{name}", "not a lower-case identifier", "rename the metric")
            item = item or {}
            if not isinstance(item, dict):
                raise self.fail(f"metrics.{name}", "not a mapping", "write {unit: ..., description: ...}")
            out.append(
                Metric(
                    name,
                    self.get(item, "unit", f"metrics.{name}.", str, ""),
                    self.get(item, "description", f"metrics.{name}.", str, ""),
                )
            )
        if not out:
            raise self.fail("metrics", "empty", "declare the metrics the testbench measures")
        return tuple(out)

    def testbench(self, items: list, metrics: tuple[Metric, ...]) -> tuple[Step, ...]:
        names = {m.name for m in metrics}
        steps, emitted = [], set()
        for i, item in enumerate(items):
            where = f"testbench[{i}]."
            if not isinstance(item, dict):
                raise self.fail(f"testbench[{i}]", "not a mapping", "write {commands: [...], emits: [...]}")
            commands = self.get(item, "commands", where, list)
            if not commands:
                raise self.fail(f"{where}commands", "empty", "start the step with an analysis, e.g. op")
            emits = self.get(item, "emits", where, list, [])
            for j, cmd in enumerate(commands):
                if not isinstance(cmd, str) or "\n" in cmd:
                    raise self.fail(
                        f"{where}commands[{j}]",
                        "not a one-line string",
                        "write one control-language command per list item",
                    )
            for metric in emits:
                if metric not in names:
                    raise self.fail(
                        f"{where}emits",
                        f"unknown metric {metric!r}",
                        f"declare it under 'metrics' or use one of {sorted(names)}",
                    )
            derived = self.derived(self.get(item, "derive", where, list, []), where, names)
            emitted.update(emits)
            emitted.update(d.metric for d in derived)
            steps.append(Step(tuple(commands), tuple(emits), derived))
        for metric in sorted(names - emitted):
            raise self.fail(
                "testbench",
                f"metric {metric!r} is never emitted",
                f"add {metric} to the 'emits' of the step that measures it",
            )
        return tuple(steps)

    def derived(self, items: list, where: str, names: set[str]) -> tuple[Derived, ...]:
        out = []
        for i, item in enumerate(items):
            at = f"{where}derive[{i}]"
            if not isinstance(item, dict):
                raise self.fail(at, "not a mapping", "write {metric: NAME, kind: sndr_db, vector: VECTOR}")
            metric = self.get(item, "metric", f"{at}.", str)
            kind = self.get(item, "kind", f"{at}.", str)
            vector = self.get(item, "vector", f"{at}.", str)
            signal_bin = self.get(item, "signal_bin", f"{at}.", int, None)
            if metric not in names:
                raise self.fail(f"{at}.metric", f"unknown metric {metric!r}", "declare it under 'metrics'")
            if kind not in DERIVED_KINDS:
                raise self.fail(f"{at}.kind", f"unknown kind {kind!r}", f"use one of {sorted(DERIVED_KINDS)}")
            if not _VECTOR.fullmatch(vector):
                raise self.fail(f"{at}.vector", f"{vector!r} is not a vector name", "`let NAME = ...` it first")
            if signal_bin is not None and signal_bin < 1:
                raise self.fail(f"{at}.signal_bin", "below 1", "give the number of signal cycles in the record")
            out.append(Derived(metric, kind, vector, signal_bin))
        return tuple(out)

    def specs(self, items: list, metrics: tuple[Metric, ...]) -> tuple[Spec, ...]:
        names = {m.name for m in metrics}
        out = []
        if not items:
            raise self.fail("specs", "empty", "list at least one spec")
        for i, item in enumerate(items):
            where = f"specs[{i}]."
            if not isinstance(item, dict):
                raise self.fail(f"specs[{i}]", "not a mapping", "write {metric: ..., kind: ..., target: ...}")
            metric = self.get(item, "metric", where, str)
            if metric not in names:
                raise self.fail(f"{where}metric", f"unknown metric {metric!r}", f"use one of {sorted(names)}")
            kind = self.get(item, "kind", where, str)
            if kind not in ("min", "max", "range"):
                raise self.fail(f"{where}kind", f"{kind!r} is not min, max or range", "write min, max or range")
            lo = hi = None
            if kind == "range":
                target = self.get(item, "target", where, list)
                if len(target) != 2:
                    raise self.fail(f"{where}target", "a range target is [lo, hi]", "write target: [lo, hi]")
                # YAML 1.1 reads 14e3 as text: numbers inside lists go through the same check.
                lo = self.get({"lo": target[0]}, "lo", f"{where}target.", float)
                hi = self.get({"hi": target[1]}, "hi", f"{where}target.", float)
                if not lo < hi:
                    raise self.fail(
                        f"{where}target", f"range with lo={lo:g} >= hi={hi:g}", "write the lower bound first"
                    )
            elif kind == "min":
                lo = self.get(item, "target", where, float)
            else:
                hi = self.get(item, "target", where, float)
            spec = Spec(
                metric,
                kind,
                lo,
                hi,
                margin=self.get(item, "margin", where, float, 0.1),
                scale=self.get(item, "scale", where, float, None) if "scale" in item else None,
                log=self.get(item, "log", where, bool, False),
                alpha=self.get(item, "alpha", where, float, 0.05),
                beta=self.get(item, "beta", where, float, 0.5),
                c=self.get(item, "c", where, float, 0.1),
                fixed=self.get(item, "fixed", where, bool, False),
                span=self.get(item, "span", where, float, None) if "span" in item else None,
            )
            self.check_spec(spec, where)
            out.append(spec)
        return tuple(out)

    def check_spec(self, spec: Spec, where: str) -> None:
        if not 0 <= spec.margin < 1:
            raise self.fail(f"{where}margin", f"{spec.margin:g} is outside [0, 1)", "use e.g. 0.1 for +-10 %")
        if spec.scale is not None and spec.scale <= 0:
            raise self.fail(f"{where}scale", "must be positive", "give a positive scale or remove it")
        bounds = [b for b in (spec.lo, spec.hi) if b is not None]
        if spec.log and any(b <= 0 for b in bounds):
            raise self.fail(f"{where}log", "a log-ratio spec needs positive targets", "remove log: true")
        if spec.scale is None and spec.kind != "range" and bounds[0] == 0:
            raise self.fail(f"{where}scale", "target 0 has no relative scale", "give 'scale:' explicitly")
        if not 0 < spec.alpha < spec.beta:
            raise self.fail(f"{where}alpha", "need 0 < alpha < beta", "use alpha 0.05, beta 0.5")
        if spec.span is not None and (spec.fixed or spec.span < 0):
            raise self.fail(f"{where}span", "a span is >= 0, and a fixed spec has none", "remove span or fixed")
        if not 0 < spec.c < 1:
            raise self.fail(f"{where}c", "need 0 < c < 1", "use c 0.1")
        # The cubic falls monotonically from 1-c to 0 only if its start slope is not too steep
        # (Fritsch-Carlson: the ratio of end slope to secant slope at most 3).
        if 2 * spec.c * (spec.beta - spec.alpha) > 3 * spec.alpha * (1 - spec.c):
            raise self.fail(
                f"{where}c",
                "this c, alpha, beta make the reward overshoot",
                "need 2c(beta-alpha) <= 3 alpha (1-c); lower c or raise alpha",
            )
