"""Every shipped task: the reference design scores 1.0, and 200 random designs score low."""

import pytest

from simworkers.task import all_tasks
from system.checks import RANDOM_MEDIAN_LIMIT, LocalRunner, check_task

TASKS = sorted(t.name for t in all_tasks())


@pytest.fixture(scope="module")
def runner():
    with LocalRunner("shared") as r:
        yield r


@pytest.mark.parametrize("name", TASKS)
def test_reference_meets_specs_and_random_designs_do_not(runner, name):
    task = next(t for t in all_tasks() if t.name == name)
    check = check_task(task, runner, n_random=200)
    assert check.reference.ok, check.reference.reason
    assert check.reference_score == 1.0
    assert check.random_median < RANDOM_MEDIAN_LIMIT
    assert check.passed


def test_at_least_the_first_three_tasks_ship():
    assert {"telescopic_sky130", "ota5t_generic", "ldo_sky130"} <= set(TASKS)
