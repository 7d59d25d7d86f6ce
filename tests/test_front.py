"""Trade-off fronts and the front query rule (SPEC section 2): a front holds only eligible,
non-dominated designs, is stored and refused when stale, and its queries are reproducible,
attainable, spread over its cells, and never share a witness between the splits."""

import asyncio
import math
import re
import shutil
from collections import Counter

import numpy as np
import pytest

from simworkers.catalog import BUILTIN_TASKS, load_task, resolve_tasks
from simworkers.dataset import (
    DatasetError,
    fresh_front_path,
    front_is_fresh,
    read_front,
    shipped_front_path,
    write_front,
)
from simworkers.front import (
    FrontError,
    build_front,
    centre_design,
    cover_cells,
    eligible,
    front_cost,
    latin_hypercube,
    non_dominated,
    trade_specs,
)
from simworkers.query import EVAL_SEED_BASE, front_query, seed_for
from simworkers.task import shortfall
from system.agent.reward import score_metrics
from system.evaluation.datasets import QuerySource


@pytest.fixture(scope="module")
def ota(runner):
    task = load_task("ota5t_generic")
    return task, build_front(task, runner.run)


def test_latin_hypercube_puts_one_point_in_each_stratum():
    points = latin_hypercube(5, 7, np.random.default_rng(0))
    assert points.shape == (5, 7) and (points >= 0).all() and (points < 1).all()
    for column in points.T:
        assert sorted(np.floor(column * 5).astype(int)) == list(range(5))


def test_non_dominated_keeps_exactly_the_rows_no_other_row_beats():
    levels = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [2, 2], [6, 6]], dtype=float)
    assert non_dominated(levels).tolist() == [True, True, True, False, True, False]  # ties both stay
    # a range metric's place (in window widths): only a design near another's window can beat it
    assert non_dominated(np.array([[1.0], [2.0]]), np.array([[0.0], [3.0]])).tolist() == [True, True]
    assert non_dominated(np.array([[1.0], [2.0]]), np.array([[0.0], [0.2]])).tolist() == [True, False]
    rng = np.random.default_rng(1)
    random = rng.random((60, 3))
    mask = non_dominated(random)
    for i in range(60):
        beaten = any(np.all(random[j] <= random[i]) and np.any(random[j] < random[i]) for j in range(60))
        assert mask[i] == (not beaten)


def test_cells_cover_every_point_within_their_width():
    coords = np.random.default_rng(2).random((200, 3)) * 4
    cells = cover_cells(coords, 0.5)
    for c in set(cells.tolist()):
        members = coords[cells == c]
        centre = members[np.argmin(np.max(np.abs(members[:, None] - members[None]), axis=2).max(axis=1))]
        assert np.max(np.abs(members - centre)) <= 1.0 + 1e-12  # within twice the width of any member
    assert len(set(cover_cells(coords, 100.0).tolist())) == 1
    assert len(set(cover_cells(coords, 1e-9).tolist())) == 200


def test_the_front_holds_only_eligible_non_dominated_designs(ota):
    task, front = ota
    n = task.front.sample_count(len(task.params))
    assert len(front.designs) == front_cost(task) == n + 2
    assert front.designs[front.index_of("centre")] == centre_design(task)
    assert front.designs[front.index_of("reference")] == task.reference()
    for p in task.params:  # centre is the geometric middle of a log range
        assert math.isclose(centre_design(task)[p.name], math.sqrt(p.lo * p.hi), rel_tol=1e-9)
    trade = trade_specs(task)
    pool = [i for i, o in enumerate(front.origin) if o == "sample" and eligible(task, front.metrics[i])]
    members = [i for i in range(len(front.designs)) if front.on_front[i]]
    assert 30 <= len(members) < len(pool)

    def better_or_equal(a, b, s):
        x, y = front.metrics[a][s.metric], front.metrics[b][s.metric]
        return x >= y if s.kind == "min" else x <= y

    for i in members:
        assert eligible(task, front.metrics[i]) and front.cell[i] >= 0 and front.split[i] in ("train", "eval")
        for j in pool:
            dominates = all(better_or_equal(j, i, s) for s in trade) and any(
                not better_or_equal(i, j, s) for s in trade
            )
            assert not dominates, (i, j)
    for spec in (s for s in task.specs if s.fixed):
        assert all(shortfall(spec, front.metrics[i][spec.metric]) <= 0 for i in members)
    assert {front.split[i] for i in members} == {"train", "eval"}
    assert 0.1 < len(front.members("eval")) / len(members) < 0.3


def test_front_queries_are_reproducible_attainable_and_keep_the_splits_apart(ota):
    task, front = ota
    train = [front_query(task, seed_for("train", i), front) for i in range(300)]
    held_out = [front_query(task, seed_for("eval", i), front) for i in range(100)]
    assert train[:5] == [front_query(task, seed_for("train", i), front) for i in range(5)]
    for q in train + held_out:
        assert score_metrics(q.specs, q.witness_metrics).value == 1.0  # the witness meets every target
        assert all(p.lo <= q.initial[p.name] <= p.hi for p in task.params)
        for spec, nominal in zip(q.specs, task.specs):
            if nominal.fixed:
                assert (spec.lo, spec.hi) == (nominal.lo, nominal.hi)
    assert all(q.seed >= EVAL_SEED_BASE and q.split == "eval" for q in held_out)
    train_witnesses = {tuple(q.witness.items()) for q in train}
    assert not train_witnesses & {tuple(q.witness.items()) for q in held_out}
    # different queries ask for different trade-offs: the targets spread over the front
    for spec in trade_specs(task):
        bounds = [(s.lo if s.kind == "min" else s.hi) for q in held_out for s in q.specs if s.metric == spec.metric]
        assert max(bounds) / min(bounds) > 3 if spec.log else max(bounds) - min(bounds) > 0.05 * abs(max(bounds))


def test_witnesses_spread_over_the_cells_not_where_sampling_was_dense(ota):
    task, front = ota
    cells = front.cells("train")
    picked = Counter(
        int(front.cell[front.designs.index(front_query(task, seed_for("train", i), front).witness)])
        for i in range(3000)
    )
    assert set(picked) <= set(cells)
    expected = 3000 / len(cells)
    assert max(picked.values()) < 3 * expected  # uniform over cells, however many members each holds
    assert len(picked) > 0.8 * len(cells)


def test_a_front_is_stored_read_back_and_refused_once_its_task_changes(tmp_path, runner, monkeypatch, ota):
    task, front = ota
    write_front(task, front, tmp_path)
    again = read_front(task, tmp_path)
    assert again.designs == front.designs and again.metrics == front.metrics and again.split == front.split
    assert (again.cell == front.cell).all() and (again.on_front == front.on_front).all()
    folder = tmp_path / "tasks" / "my_ota"
    shutil.copytree(BUILTIN_TASKS / "ota5t_generic", folder, ignore=shutil.ignore_patterns("front.parquet"))
    task_file = folder / "task.yaml"
    task_file.write_text(task_file.read_text().replace("name: ota5t_generic", "name: my_ota"))
    mine = load_task(folder)
    write_front(mine, build_front(mine, runner.run), tmp_path)
    assert front_is_fresh(mine, tmp_path)
    task_file.write_text(task_file.read_text().replace("timeout_s: 10", "timeout_s: 11"))
    changed = load_task(folder)
    assert not front_is_fresh(changed, tmp_path)
    with pytest.raises(DatasetError, match=r"stale.*tlgrpo data build --tasks my_ota"):
        read_front(changed, tmp_path)
    with pytest.raises(FrontError, match="rebuild it"):
        front_query(changed, 0, front)


def test_a_task_whose_fixed_spec_no_design_meets_is_refused_with_what_to_change(tmp_path, runner):
    folder = tmp_path / "impossible"
    shutil.copytree(BUILTIN_TASKS / "ota5t_generic", folder, ignore=shutil.ignore_patterns("front.parquet"))
    task_file = folder / "task.yaml"
    text = task_file.read_text().replace("name: ota5t_generic", "name: impossible")
    text = re.sub(r"(?m)^front:.*$", "", text) + "\nfront: {samples: 100}\n"
    text = re.sub(r"(?m)^  - \{metric: pm, .*$", "  - {metric: pm, kind: min, target: 175, fixed: true}", text)
    task_file.write_text(text)
    task = load_task(folder)
    assert any(s.fixed and s.metric == "pm" for s in task.specs)
    with pytest.raises(FrontError, match=r"no train witness.*front.samples.*front.refine"):
        build_front(task, runner.run)


def test_a_run_builds_a_missing_front_once_through_its_pool_and_stores_it(tmp_path):
    from conftest import CountingSimulator

    folder = tmp_path / "tasks" / "my_ota"  # a user's task: nothing shipped beside it
    shutil.copytree(BUILTIN_TASKS / "ota5t_generic", folder, ignore=shutil.ignore_patterns("front.parquet"))
    task_file = folder / "task.yaml"
    task_file.write_text(task_file.read_text().replace("name: ota5t_generic", "name: my_ota"))
    task = load_task(folder)
    counter = CountingSimulator()
    try:
        source = QuerySource(counter, root=tmp_path, on_the_fly=True)
        first = asyncio.run(source.get(task, "train", 4))
        assert len(counter.calls) == front_cost(task) and front_is_fresh(task, tmp_path)
        assert asyncio.run(source.get(task, "eval", 3, start=2))[0].seed == seed_for("eval", 2)
        again = QuerySource(counter, root=tmp_path, on_the_fly=True)
        assert asyncio.run(again.get(task, "train", 4)) == first
        assert len(counter.calls) == front_cost(task)  # read back, nothing simulated again
    finally:
        counter.backend.close()


def test_every_built_in_task_ships_its_front_and_a_fresh_build_makes_the_same_one(tmp_path, ota):
    """A run on a new machine reads the front shipped beside the task file, simulating nothing;
    one edited without rebuilding its front fails here with the command that rebuilds it. The
    shipped front is what the simulator makes today: ota5t_generic's, built afresh, matches."""
    stale = [t.name for t in resolve_tasks(["all"]) if fresh_front_path(t, tmp_path) != shipped_front_path(t)]
    assert not stale, (
        f"shipped fronts stale for {stale}: run `tlgrpo data build --tasks <task>` and copy "
        "<data>/fronts/<task>.parquet to simworkers/tasks/<task>/front.parquet"
    )
    task, built = ota
    shipped = read_front(task, tmp_path)
    assert shipped.designs == built.designs and shipped.split == built.split
    assert (shipped.on_front == built.on_front).all() and (shipped.cell == built.cell).all()
    assert all(
        (a is None) == (b is None) and (a is None or all(math.isclose(a[k], b[k], rel_tol=1e-6) for k in a))
        for a, b in zip(shipped.metrics, built.metrics)
    )


def test_every_reference_is_a_working_design_off_the_middle_of_its_ranges():
    """The reference is inside the ranges but not their middle (SPEC section 2): a shortcut
    that proposes the middle is then not the reference, and neither may win (the committed
    baseline table checks that both score below random search)."""
    from simworkers.catalog import all_tasks
    from simworkers.front import to_unit

    for task in all_tasks():
        places = [to_unit(p, p.reference) for p in task.params]
        assert all(0 <= u <= 1 for u in places), task.name
        assert np.mean([abs(u - 0.5) for u in places]) > 0.05, task.name


def test_a_front_whose_specs_alone_changed_is_rebuilt_without_simulating_again(tmp_path, runner):
    """Tuning a task's tolerances (the calibration loop) must not cost its thousand simulations:
    the stale front's results are reused when the circuit, process, testbench and parameters
    are the same; a changed netlist simulates anew."""
    from simworkers.dataset import front_is_fresh, stored_results
    from system.evaluation.datasets import ensure_front

    folder = tmp_path / "tasks" / "tuned"
    shutil.copytree(BUILTIN_TASKS / "ota5t_generic", folder, ignore=shutil.ignore_patterns("front.parquet"))
    task_file = folder / "task.yaml"
    task_file.write_text(task_file.read_text().replace("name: ota5t_generic", "name: tuned"))
    first, kept = ensure_front(load_task(folder), runner, tmp_path)
    assert not kept
    task_file.write_text(re.sub(r"(?m)^front:.*$", "front: {cell: 0.35}", task_file.read_text()))
    retuned = load_task(folder)
    assert not front_is_fresh(retuned, tmp_path) and len(stored_results(retuned, tmp_path)) == len(first.designs)
    calls = []

    def counting(task, designs):
        calls.extend(designs)
        return runner.run(task, designs)

    from simworkers.front import build_front

    again = build_front(retuned, counting, known=stored_results(retuned, tmp_path))
    assert calls == [] and again.metrics == first.metrics and again.n_cells >= first.n_cells
    (folder / "netlist.sp").write_text((folder / "netlist.sp").read_text().replace("cl out 0 1p", "cl out 0 2p"))
    assert stored_results(load_task(folder), tmp_path) == {}  # another circuit: nothing reused
