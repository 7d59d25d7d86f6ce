"""Both ngspice backends on the real simulator: same numbers, failures classified, limits held."""

import os
import signal
import time

import pytest

from simworkers.backends import make_backend
from simworkers.catalog import load_task
from system.evaluation.checks import random_designs
from tests.conftest import RC_NETLIST, write_task

BACKENDS = ["shared", "batch"]


@pytest.mark.parametrize("task_name", ["ota5t_generic", "telescopic_sky130", "ldo_sky130"])
def test_backends_agree(task_name):
    task = load_task(task_name)
    designs = [task.reference(), *random_designs(task, 4, seed=11)]
    with make_backend("shared") as shared, make_backend("batch") as batch:
        for design in designs:
            a, b = shared.simulate(task, design), batch.simulate(task, design)
            assert a.status == b.status, (a.reason, b.reason)
            assert a.metrics.keys() == b.metrics.keys()
            for name in a.metrics:
                assert a.metrics[name] == pytest.approx(b.metrics[name], rel=1e-4, abs=1e-9)


def rc_variant(tmp_path, monkeypatch, name, netlist=RC_NETLIST, extra="", **replace):
    """The RC user task with its task file edited: `replace` maps old text to new."""
    monkeypatch.setenv("TLGRPO_TASK_PATH", str(tmp_path))
    path = write_task(tmp_path, name, netlist=netlist) / "task.yaml"
    text = path.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text + extra)
    return load_task(name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_measurement_is_failed_not_made_up(backend, tmp_path, monkeypatch):
    # The corner can never be found below 10 Hz: the .meas fails and prints an error.
    task = rc_variant(tmp_path, monkeypatch, "rc_nomeas", **{"ac dec 20 1 1g": "ac dec 20 1 10"})
    with make_backend(backend) as sim:
        result = sim.simulate(task, task.reference())
        assert result.status == "failed"
        assert "f3db" in result.reason
        assert "f3db" not in result.metrics
        assert result.metrics["vdc"] == pytest.approx(1.0)  # what was measured is kept
        # and the worker goes on
        assert sim.simulate(load_task("ota5t_generic"), load_task("ota5t_generic").reference()).ok


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_line_fails_the_result(backend, tmp_path, monkeypatch):
    # A device below the model's minimum width: ngspice reports an error, exit code aside.
    netlist = RC_NETLIST + "xm1 out in 0 0 sky130_fd_pr__nfet_01v8 w=0.1 l=0.15\n"
    task = rc_variant(tmp_path, monkeypatch, "rc_err", netlist, **{"process: generic180": "process: sky130"})
    with make_backend(backend) as sim:
        result = sim.simulate(task, task.reference())
        assert result.status == "failed"
        assert "rror" in result.reason
        ok_task = load_task("telescopic_sky130")
        assert sim.simulate(ok_task, ok_task.reference()).ok


def _slow_task(tmp_path, monkeypatch):
    """An RC filter with a transient of ten million steps: ngspice runs for many seconds."""
    ac_step = '["ac dec 20 1 1g", '
    return rc_variant(
        tmp_path, monkeypatch, "rc_slow", extra="timeout_s: 1.5\n", **{ac_step: '["tran 1n 10m", ' + ac_step[1:]}
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_simulation_times_out_within_the_limit_and_the_worker_recovers(backend, tmp_path, monkeypatch):
    slow = _slow_task(tmp_path, monkeypatch)
    ota = load_task("ota5t_generic")
    with make_backend(backend) as sim:
        assert sim.simulate(ota, ota.reference()).ok
        start = time.monotonic()
        result = sim.simulate(slow, slow.reference())
        took = time.monotonic() - start
        assert result.status == "timeout"
        assert took < slow.timeout_s + 1.0
        after = sim.simulate(ota, ota.reference())
        assert after.ok, after.reason


def test_dead_ngspice_process_is_replaced():
    ota = load_task("ota5t_generic")
    with make_backend("shared") as sim:
        first = sim.simulate(ota, ota.reference())
        assert first.ok
        os.kill(sim._proc.pid, signal.SIGKILL)
        sim._proc.wait()
        again = sim.simulate(ota, ota.reference())
        assert again.ok, again.reason
        assert again.metrics == pytest.approx(first.metrics)
        assert sim.restarts == 1


def test_library_that_cannot_recover_is_replaced(tmp_path, monkeypatch):
    # A non-numeric expression in the netlist puts the shared library into its
    # "cannot recover" state; the backend must start a fresh process for the next design.
    bad = rc_variant(tmp_path, monkeypatch, "rc_formula", RC_NETLIST.replace("{r}", "{r*abc}"))
    ota = load_task("ota5t_generic")
    with make_backend("shared") as sim:
        result = sim.simulate(bad, bad.reference())
        assert result.status == "failed" and "cannot recover" in result.reason
        assert sim.restarts == 1  # the library's own word made the backend replace the process
        after = sim.simulate(ota, ota.reference())
        assert after.ok, after.reason
