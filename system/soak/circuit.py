"""The soak's circuit: an RC low-pass whose `trap` knob makes ngspice misbehave on purpose.

`trap` below 1 is an ordinary design, answered with f3db = 1/(2 pi R C), which the soak checks;
from 1 to 2 the control script starts a transient of ten billion steps (ngspice iterates until
the wall-clock limit kills it); from 2 up a shell command from the control script kills
ngspice's own process, as a crash would. Written as a user task: a folder with task.yaml,
netlist.sp and the crash script, found through TLGRPO_TASK_PATH.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Literal

NAME = "soak_rc"
TIMEOUT_S = 1.0
Kind = Literal["ok", "hang", "crash"]
TRAP = {"ok": (0.0, 0.9), "hang": (1.1, 1.9), "crash": (2.1, 2.9)}

NETLIST = """\
* RC low-pass; vtrap carries the trap knob into the control script
vin in 0 dc 1 ac 1
r1 in out {r}
c1 out 0 {c}
vtrap trap 0 {trap}
"""

# the nearest ancestor that is ngspice (`ngspice -b`, or the shared backend's child process),
# never past a Ray worker
CRASH_SCRIPT = """\
#!/bin/sh
p=$PPID
while [ "$p" -gt 1 ]; do
  cmd=$(tr '\\0' ' ' < /proc/$p/cmdline)
  case "$cmd" in
    *ray::*) exit 1;;
    *ngspice*) kill -9 "$p"; exit 0;;
  esac
  p=$(awk '{print $4}' /proc/$p/stat)
done
"""

TASK = """\
name: {name}
description: An RC low-pass filter with a trap that hangs or kills ngspice; the fault soak's task.
process: generic180
netlist: netlist.sp
params:
  - {{name: r, unit: ohm, lo: 100, hi: 1e6, scale: log, reference: 1e4}}
  - {{name: c, unit: F, lo: 1e-12, hi: 1e-6, scale: log, reference: 1e-9}}
  - {{name: trap, unit: V, lo: 0, hi: 3, reference: 0}}
metrics:
  f3db: {{unit: Hz}}
  vdc: {{unit: V}}
testbench:
  - commands: [op, "let vdc = v(out)", "let armed = v(trap)", "if armed >= 2", "shell sh {script}", "end",
               "if armed >= 1", "tran 1n 10", "end"]
    emits: [vdc]
  - commands: ["ac dec 50 1 1g", "meas ac f3db when vdb(out)=-3.0103"]
    emits: [f3db]
specs:
  - {{metric: f3db, kind: range, target: [14e3, 18e3]}}
timeout_s: {timeout}
"""


def write_task(folder: Path) -> Path:
    """The task folder under `folder` (put `folder` on TLGRPO_TASK_PATH)."""
    task_dir = Path(folder) / NAME
    task_dir.mkdir(parents=True, exist_ok=True)
    script = task_dir / "crash.sh"
    script.write_text(CRASH_SCRIPT)
    (task_dir / "netlist.sp").write_text(NETLIST)
    (task_dir / "task.yaml").write_text(TASK.format(name=NAME, script=script.resolve(), timeout=TIMEOUT_S))
    return task_dir


def draw_design(rng: random.Random, hang: float, crash: float) -> tuple[Kind, dict[str, float]]:
    """A design of the kind the seeded draw picks: a hang with probability `hang`, a crash with
    `crash`, else an ordinary one; R and C log-uniform so that the corner lies on the sweep."""
    u = rng.random()
    kind: Kind = "hang" if u < hang else "crash" if u < hang + crash else "ok"
    lo, hi = TRAP[kind]
    return kind, {"r": 10 ** rng.uniform(2.5, 5.5), "c": 10 ** rng.uniform(-11.5, -7.5), "trap": rng.uniform(lo, hi)}


def corner_hz(design: dict[str, float]) -> float:
    return 1.0 / (2 * math.pi * design["r"] * design["c"])


def answer_matches(kind: Kind, design: dict[str, float], status: str, metrics: dict, reason: str) -> bool:
    """Whether a result is the one this design must get: an ordinary design its own corner (to
    1 %, so an answer that went to the wrong request shows), a hang a timeout, a crash a failure
    that says ngspice died or lost its measurement."""
    if kind == "ok":
        f = metrics.get("f3db")
        return status == "ok" and f is not None and abs(f / corner_hz(design) - 1) < 0.01
    if kind == "hang":
        return status == "timeout"
    return status == "failed" and ("died" in reason or "f3db" in reason)
