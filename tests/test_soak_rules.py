"""The soak's rules without Ray: the seeded fault schedule, the account, the trap circuit's
answers checked on the real ngspice (both backends)."""

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from system.soak import account, circuit
from system.soak.schedule import DEATHS, LEARNER, NODE, ROLLOUT, SIM_ACTOR, FaultSchedule


def _replay(seed: int, updates_at: dict[float, int], until: float = 60.0) -> list[tuple[float, str]]:
    schedule = FaultSchedule(seed, sim_kill_every_s=2.0, death_every_updates=2, death_delay_s=1.0, node_every_s=10.0)
    out, updates = [], 0
    for k in range(int(until / 0.2)):
        now = k * 0.2
        updates = max([n for t, n in updates_at.items() if t <= now], default=0)
        out += [(round(now, 1), kind) for kind in schedule.due(now, updates)]
    return out


def test_the_schedule_is_a_function_of_its_seed():
    progress = {5.0 * i: i for i in range(12)}
    assert _replay(3, progress) == _replay(3, progress)
    assert _replay(3, progress) != _replay(4, progress)


def test_deaths_wait_for_progress_and_alternate():
    stalled = _replay(1, {0.0: 0})  # no learner update ever: no death, ever
    assert not [k for _, k in stalled if k in DEATHS]
    assert [k for _, k in stalled if k == SIM_ACTOR] and [k for _, k in stalled if k == NODE]
    deaths = [(t, k) for t, k in _replay(1, {5.0 * i: i for i in range(12)}) if k in DEATHS]
    kinds = [k for _, k in deaths]
    assert len(kinds) >= 4 and all(a != b for a, b in itertools.pairwise(kinds))  # rollout, learner, rollout, ...
    assert {ROLLOUT, LEARNER} == set(kinds)
    # two updates (ten seconds) between deaths, less the seeded delay
    assert all(b[0] - a[0] >= 9.0 for a, b in itertools.pairwise(deaths))


def test_nodes_come_and_go_on_their_period():
    times = [t for t, k in _replay(0, {0.0: 0}, until=35.0) if k == NODE]
    assert times == [10.0, 20.0, 30.0]


def test_the_lineage_catches_a_batch_trained_twice_or_skipped():
    assert account.lineage([0, 1, 2, 3], 4) == {
        "steps": 4,
        "trained": 4,
        "trained_twice": 0,
        "skipped": [],
        "in_order": True,
    }
    twice = account.lineage([0, 1, 1, 2, 3], 4)
    assert twice["trained_twice"] == 1
    skipped = account.lineage([0, 2, 3], 4)
    assert skipped["skipped"] == [1]
    assert not account.lineage([0, 2, 1, 3], 4)["in_order"]
    # updates after the last checkpoint that died with a learner were made again: discarded, not twice
    assert account.discarded_updates([0, 1, 2, 2, 3], [0, 1, 2, 3]) == 1


def test_data_position_notices_a_step_that_drew_other_queries():
    same = account.data_position({0: [("a", 1)], 1: [("a", 2), ("a", 2)]})
    assert same == {"steps_run_again": 1, "steps_with_other_queries": []}
    other = account.data_position({1: [("a", 2), ("a", 3)]})
    assert other["steps_with_other_queries"] == [1]


def test_recovery_time_is_to_the_next_update_after_the_fault():
    times = account.time_to_next_update([(10.0, "x"), (20.0, "y"), (99.0, "x")], [5.0, 12.5, 30.0])
    assert times == {"x": [2.5], "y": [10.0]}  # the fault at 99 s saw no update after it


@pytest.fixture
def trap_task(tmp_path, monkeypatch):
    circuit.write_task(tmp_path)
    monkeypatch.setenv("TLGRPO_TASK_PATH", str(tmp_path))
    from simworkers.catalog import load_task

    return load_task(circuit.NAME)


@pytest.mark.parametrize("backend", ["shared", "batch"])
def test_the_trap_circuit_answers_hang_and_crash_as_each_backend_should(trap_task, backend):
    from simworkers.backends import make_backend

    rng = random.Random(5)
    drawn = {}
    while set(drawn) != {"ok", "hang", "crash"}:
        kind, design = circuit.draw_design(rng, 0.3, 0.3)
        drawn.setdefault(kind, design)
    with make_backend(backend) as sim:
        for kind in ("ok", "crash", "hang", "ok"):
            result = sim.simulate(trap_task, drawn[kind])
            assert circuit.answer_matches(kind, drawn[kind], result.status, result.metrics, result.reason), (
                kind,
                result,
            )
        # an answer for another design is caught
        other = dict(drawn["ok"], r=drawn["ok"]["r"] * 1.1)
        ok = sim.simulate(trap_task, drawn["ok"])
        assert not circuit.answer_matches("ok", other, ok.status, ok.metrics, ok.reason)


CHILD = """
from simworkers.catalog import load_task
from simworkers.backends import make_backend
from system.soak import circuit
sim = make_backend("shared")
task = load_task(circuit.NAME)
sim.simulate(task, task.reference())
print(sim._proc.pid, flush=True)
sim.simulate(task, {"r": 1e4, "c": 1e-9, "trap": 1.5})  # hangs for its second, then is replaced
"""


def test_ngspice_does_not_outlive_a_killed_simulation_worker(trap_task):
    """A worker killed while ngspice iterates in a hang: the ngspice child goes with it."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    slow = Path(os.environ["TLGRPO_TASK_PATH"]) / circuit.NAME / "task.yaml"
    slow.write_text(slow.read_text().replace("timeout_s: 1.0", "timeout_s: 60"))
    worker = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, env=env)
    child = int(worker.stdout.readline())
    time.sleep(1.0)  # the child is inside the ten-billion-step transient now
    os.kill(child, 0)  # alive
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the ngspice child went on iterating after its worker was killed")


def test_a_wrong_answer_breaks_the_promise_and_says_which_design_and_why():
    from system.soak.run import broken_promises

    def report(wrong: list[dict], infrastructure: int) -> dict:
        load = {"lost": 0, "checked_wrong": len(wrong), "infrastructure": infrastructure, "wrong": wrong}
        lineage = {"steps": 1, "trained": 1, "trained_twice": 0, "skipped": [], "in_order": True}
        return {
            "simulations": {"load": load, "training": {"lost": 0}},
            "training": {"lineage": lineage, "data_position": {"steps_with_other_queries": []}},
        }

    late = {"kind": "ok", "status": "timeout", "reason": "no answer in 5 s", "f3db": None, "corner_hz": 1e6}
    lost = {"kind": "ok", "status": "failed", "reason": "infrastructure: actor died", "f3db": None, "corner_hz": 1e6}
    assert broken_promises(report([lost], 1)) == []  # a dead actor's answer is counted apart
    (problem,) = broken_promises(report([lost, late], 1))
    assert problem.startswith("1 answers do not fit") and "ok design, timeout: no answer in 5 s" in problem
