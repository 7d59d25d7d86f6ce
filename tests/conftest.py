"""Shared fixtures: environment defaults, task helpers, one Ray cluster per session."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from pathlib import Path

import pytest

from system.runtime import apply_defaults

apply_defaults()


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        resources={"sim": 1},  # one unit for an elastic pool's actors
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 2**20,
    )
    yield ray
    ray.shutdown()


RC_NETLIST = """\
* RC low-pass filter driven by a 1 V AC source
vin in 0 dc 1 ac 1
r1 in out {r}
c1 out 0 {c}
"""

RC_TASK = """\
name: {name}
description: An RC low-pass filter; set its corner frequency.
process: generic180
netlist: netlist.sp
params:
  - {{name: r, unit: ohm, lo: 100, hi: 1e6, scale: log, reference: 1e4}}
  - {{name: c, unit: F, lo: 1e-12, hi: 1e-6, scale: log, reference: 1e-9}}
metrics:
  f3db: {{unit: Hz}}
  vdc: {{unit: V}}
testbench:
  - commands: [op, "let vdc = v(out)"]
    emits: [vdc]
  - commands: ["ac dec 20 1 1g", "meas ac f3db when vdb(out)=-3.0103"]
    emits: [f3db]
specs:
  - {{metric: f3db, kind: range, target: [14e3, 18e3]}}
{extra}
"""


def write_task(
    folder: Path, name: str = "rc_user", netlist: str = RC_NETLIST, extra: str = "", body: str | None = None
) -> Path:
    """A user task in `folder/name`: task.yaml plus netlist.sp, no code."""
    task_dir = folder / name
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "netlist.sp").write_text(netlist)
    (task_dir / "task.yaml").write_text(body if body is not None else RC_TASK.format(name=name, extra=extra))
    return task_dir


@pytest.fixture
def user_task_dir(tmp_path, monkeypatch):
    write_task(tmp_path)
    monkeypatch.setenv("TLGRPO_TASK_PATH", str(tmp_path))
    return tmp_path


class CountingSimulator:
    """`simulate` for policies and plans: a real shared-library backend, every call counted."""

    def __init__(self):
        from simworkers.backends import make_backend

        self.backend = make_backend("shared")
        self.calls: list[dict] = []
        self.lock = threading.Lock()

    async def __call__(self, task, params):
        with self.lock:
            self.calls.append(dict(params))
        return await asyncio.to_thread(self._run, task, params)

    def _run(self, task, params):
        with self.lock:
            return self.backend.simulate(task, params)


@pytest.fixture(scope="module")
def runner():
    """Local simulation workers (no Ray), as `tlgrpo data build` and `tasks check` use them."""
    from system.evaluation.checks import LocalRunner

    with LocalRunner("shared") as r:
        yield r


@pytest.fixture(scope="module")
def sim():
    counter = CountingSimulator()
    yield counter
    counter.backend.close()


os.environ.setdefault("TLGRPO_TEST", "1")
# one data folder for the session: the fronts that runs build on the fly (about a thousand
# simulations a task) are built once and shared, and a user's own datasets are never touched
os.environ.setdefault("TLGRPO_DATA_DIR", tempfile.mkdtemp(prefix="tlgrpo-test-data-"))
