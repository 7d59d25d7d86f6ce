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


def test_an_attempt_cuts_the_metrics_lines_it_trains_again(tmp_path, capsys):
    """A resumed attempt cuts the lines past its checkpoint; one that starts again from step 0
    (its predecessor ended before any checkpoint) cuts them all; a line a kill cut short goes too."""
    import json

    from system.config import WandbConfig
    from system.rl.tracking import Tracker

    metrics = tmp_path / "metrics.jsonl"
    steps = lambda: [json.loads(x)["step"] for x in metrics.read_text().splitlines()]  # noqa: E731
    metrics.write_text("".join(json.dumps({"step": s, "loss": 0.1}) + "\n" for s in range(4)) + '{"step": 4, "lo')
    off = WandbConfig(mode="disabled")
    Tracker(off, tmp_path, "run", {}, first_step=2)
    assert steps() == [0, 1] and "3 line(s) from step 2 on cut" in capsys.readouterr().out
    Tracker(off, tmp_path, "run", {}, first_step=2).log_step(2, 4, {"loss": 0.2})
    assert steps() == [0, 1, 2]
    Tracker(off, tmp_path, "run", {}, first_step=0)
    assert metrics.read_text() == ""
