"""The checkpoint folder: atomic saves, a `latest` pointer, pruning; no Ray."""

from system.rl.checkpoints import Checkpoints, TrainerState


def _write(path: str) -> None:
    from pathlib import Path

    Path(path).mkdir(parents=True)
    (Path(path) / "shard").write_text("x")


def test_save_latest_and_prune(tmp_path):
    ck = Checkpoints(tmp_path, keep=2)
    assert ck.latest() is None
    for step in (1, 2, 3):
        ck.save(TrainerState(step=step, version=step, seed=0, trained=list(range(step))), _write)
    assert ck.latest().name == "step_000003"
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000002", "step_000003"]
    assert ck.load_state(ck.latest()).trained == [0, 1, 2]


def test_a_save_killed_midway_leaves_the_previous_latest(tmp_path):
    ck = Checkpoints(tmp_path, keep=2)
    ck.save(TrainerState(step=1, version=1, seed=0), _write)

    def dies(path: str) -> None:
        _write(path)
        raise KeyboardInterrupt

    try:
        ck.save(TrainerState(step=2, version=2, seed=0), dies)
    except KeyboardInterrupt:
        pass
    assert ck.latest().name == "step_000001"
    assert (tmp_path / "step_000002.tmp").exists()  # half-written, never pointed at
