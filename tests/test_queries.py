from simworkers.catalog import load_task
from simworkers.query import EVAL_SEED_BASE, make_query, queries, seed_for


def test_queries_are_reproducible_and_splits_disjoint():
    task = load_task("ldo_sky130")
    a, b = queries(task, "train", 20), queries(task, "train", 20)
    assert a == b
    train = {q.seed for q in queries(task, "train", 500)}
    held_out = {q.seed for q in queries(task, "eval", 500)}
    assert not train & held_out
    assert all(s < EVAL_SEED_BASE for s in train) and all(s >= EVAL_SEED_BASE for s in held_out)
    assert all(q.split == "eval" for q in queries(task, "eval", 3))


def test_initial_design_inside_ranges_and_targets_inside_margins():
    task = load_task("telescopic_sky130")
    for q in queries(task, "train", 200):
        for p in task.params:
            assert p.lo <= q.initial[p.name] <= p.hi
        for nominal, moved in zip(task.specs, q.specs):
            for n, m in ((nominal.lo, moved.lo), (nominal.hi, moved.hi)):
                if n is None:
                    assert m is None
                    continue
                width = (nominal.hi - nominal.lo) if nominal.kind == "range" else abs(n)
                tol = nominal.margin * width * (1.2 if nominal.log else 1.0) + 1e-12
                assert abs(m - n) <= tol


def test_different_seeds_give_different_queries():
    task = load_task("ota5t_generic")
    assert make_query(task, seed_for("train", 1)).initial != make_query(task, seed_for("train", 2)).initial
