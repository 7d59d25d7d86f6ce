"""Every shipped task: the reference design scores 1.0 against its nominal specs, and random
designs (50 here; `tlgrpo tasks check` runs 200) simulate or fail cleanly and score a median
below 0.9 against the queries of the front the task ships with (the benchmark's own). Whether
they find reward often enough, and whether a shortcut beats random search, is the committed
baseline table's to show: tests/test_calibration.py."""

import pytest

from simworkers.catalog import all_tasks
from simworkers.dataset import read_front
from system.evaluation.checks import check_task

TASKS = sorted(t.name for t in all_tasks())


@pytest.mark.parametrize("name", TASKS)
def test_reference_meets_specs_and_random_designs_do_not(runner, name):
    task = next(t for t in all_tasks() if t.name == name)
    check = check_task(task, runner, n_random=50, front=read_front(task))
    assert check.reference.ok, check.reference.reason
    assert check.reference_score == 1.0
    assert check.rule == "front" and check.passed, check.problems()
    assert sum(check.random_statuses.values()) == 50 and "invalid" not in check.random_statuses


def test_at_least_the_first_three_tasks_ship():
    assert {"telescopic_sky130", "ota5t_generic", "ldo_sky130"} <= set(TASKS)


def test_benchmark_split_like_the_paper():
    tasks = all_tasks()
    in_domain = [t for t in tasks if t.domain == "in"]
    out_domain = [t for t in tasks if t.domain == "out"]
    assert len(in_domain) >= 11 and len(out_domain) >= 4
    # three data-converter blocks, as in the paper's suite, each measured in a transient; the
    # spectrum and the transfer curve come from whole vectors (a step's `derive`)
    converters = [t for t in in_domain if t.name in {"sample_hold_sky130", "dac_sky130", "mdac_sky130"}]
    assert len(converters) == 3
    assert all(any(c.startswith("tran") for step in t.testbench for c in step.commands) for t in converters)
    assert len([t for t in converters if any(step.derive for step in t.testbench)]) >= 2
    assert len({t.circuit for t in in_domain}) == len(in_domain)  # different netlists
    assert all(8 <= len(t.params) <= 40 for t in tasks)
    # the out-of-domain op-amp: one family, four processes, a netlist no in-domain task uses
    assert len({t.family for t in out_domain}) == 1
    # four device-model sets: sky130 1.8 V, gf180mcu 3.3 V and 6 V devices, the generic models
    assert len({t.circuit for t in out_domain}) == 4 and len({t.process for t in out_domain}) == 3
    ood_netlist_lines = {line for t in out_domain for line in t.circuit.splitlines() if line.startswith(("m", "x"))}
    for t in in_domain:
        assert not ood_netlist_lines & set(t.circuit.splitlines())


def test_docs_table_lists_every_task():
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "tasks.md").read_text()
    assert "Written by `tlgrpo tasks doc`" in text
    for task in all_tasks():
        assert f"| {task.name} |" in text, "docs/tasks.md is stale: run `tlgrpo tasks doc`"
