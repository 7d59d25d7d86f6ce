"""`tlgrpo train` end to end on real Ray, real ngspice and a tiny model: a short run, a run killed
mid-way and resumed, and the same training submitted with `ray job submit` to a local Ray head."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# small enough for a few seconds a step on two cores; groups with equal rewards are kept so that
# every step updates the weights even though a model built from a config cannot score yet
SMALL = [
    "algorithm.queries_per_step=1",
    "algorithm.group_size=2",
    "algorithm.budget=2",
    "algorithm.flat_groups=keep",
    "rollout.sampling.max_new_tokens=24",
    "run.eval_queries=1",
    "tasks.train=[ota5t_generic]",
    "tasks.eval=[ota5t_generic]",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0", HF_HUB_OFFLINE="1")
    return env


def _train(out: Path, steps: int, *extra: str, **kw) -> subprocess.Popen:
    cmd = [str(BIN / "tlgrpo"), "train", "tiny-cpu", f"run.out_dir={out}", f"run.steps={steps}", *SMALL, *extra]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw
    )


def kill_when(proc: subprocess.Popen, ready, what: str, timeout_s: float = 400) -> None:
    """SIGKILL `proc`'s process group (the driver and the Ray it started, at once) as soon as
    `ready()` holds; fail if it never does or the run ends first."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s:.0f} s")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_the_demo_trains_and_tables_the_base_and_trained_policies(tmp_path):
    """The main job's code path (`tlgrpo demo`) on the tiny model: the format warm-up, the
    starting policy's evaluation before training, checkpoints, metrics, the final evaluation, and
    W&B files."""
    out = tmp_path / "run"
    warmup = ["warmup.episodes=2", "warmup.batch_episodes=2"]
    cmd = [str(BIN / "tlgrpo"), "demo", "--config", "tiny-cpu", "--out", str(out), "run.steps=2", *SMALL, *warmup]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "format warm-up: 2 synthetic episodes, 1 steps" in proc.stdout
    assert (out / "warmup" / "final" / "config.json").exists()
    assert "evaluation at step 0: episodes: 1/1 done" in proc.stdout  # progress, on a log too
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert any(line.startswith("| format warm-up, before TL-GRPO (multi-turn)") for line in table), log[-3000:]
    assert any(line.startswith("| tl_grpo@2 (multi-turn)") for line in table)
    assert "2 TL-GRPO steps, 2 with an update" in proc.stdout
    parsed = re.search(r"replies that parse .*: format warm-up (\d+) of (\d+); trained (\d+) of (\d+)", proc.stdout)
    assert parsed, log[-3000:]
    assert 0 <= int(parsed[1]) <= int(parsed[2]) and int(parsed[2]) >= 1 and int(parsed[3]) <= int(parsed[4])
    assert "rollout/requests_per_batch" in json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert (out / "eval" / "step_000000" / "results.md").exists()
    state = json.loads((out / "checkpoints" / "step_000002" / "trainer.json").read_text())
    assert state["step"] == 2 and state["trained"] == [0, 1] and state["version"] == 2
    assert _steps(out) == [0, 1]
    line = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    keys = ("loss", "entropy", "grad_norm", "clip_fraction", "reward/mean", "time/weight_sync_s", "simulations")
    for key in (*keys, "best_so_far/turn_0", "best_so_far/turn_2", "cut_histories"):
        assert key in line, key
    assert line["simulations"] >= 1 and line["version"] == 2
    assert (out / "final" / "config.json").exists()
    results = (out / "eval" / "step_000002" / "results.md").read_text()
    assert "tl_grpo@2 (multi-turn)" in results and "random" in results
    assert list((out / "wandb").glob("offline-run-*"))


def test_the_learning_demo_prints_its_curve_and_the_table_and_saves_the_png(tmp_path):
    """`tlgrpo demo` as the README runs it, cut to 2 steps and a 4-episode warm-up: the curve at
    every evaluation, then the table of the policy before and after beside random search, BO,
    centre and constant, and the curve as a PNG in the run folder. (That it learns is the smoke
    learning test's job: tests/test_learning.py.)"""
    out = tmp_path / "demo"
    small = ["warmup.episodes=4", "warmup.epochs=1", "warmup.batch_episodes=4", "run.eval_queries=2"]
    cmd = [str(BIN / "tlgrpo"), "demo", "--steps", "2", "--out", str(out), "run.eval_every=1", *small]
    env = {**_env(), "TLGRPO_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "held-out best@2 of the policy as it trains (random search " in proc.stdout
    assert re.findall(r"^  step +(\d+) ", proc.stdout, re.MULTILINE) == ["0", "1", "2"], log[-3000:]
    table = [
        line.split(" |")[0] for line in proc.stdout.split("held-out best@2")[1].splitlines() if line.startswith("| ")
    ]
    rows = ["warmed-up policy, before TL-GRPO (multi-turn)", "random (n/a)", "bo (n/a)", "centre (n/a)"]
    for row in [*rows, "constant (n/a)", "after 2 steps (multi-turn)"]:
        assert f"| {row}" in table, log[-3000:]
    assert (out / "learning_curve.png").stat().st_size > 0
    curve = json.loads((out / "learning_curve.json").read_text())["curve"]
    assert [p["step"] for p in curve] == [0, 1, 2] and all(0 <= p["value"] <= 1 for p in curve)
    # a step's time holds its rollout, also the one that ran beside the held-out evaluation before it
    for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()):
        assert m["time/step_s"] >= m["time/rollout_s"] + m.get("time/learn_s", 0.0), m


def test_killed_run_resumes_without_training_a_batch_twice(tmp_path):
    out = tmp_path / "run"
    collective = "rollout.weight_sync=collective"  # bucketed gloo broadcast, rebuilt after the restart
    proc = _train(out, 4, collective, start_new_session=True)
    latest = out / "checkpoints" / "latest"
    kill_when(proc, lambda: latest.exists() and latest.read_text().strip() == "step_000002", "second checkpoint")
    resumed = _train(out, 4, collective, "--resume")
    log, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, log[-3000:]
    assert "resumed from" in log and "at step 2" in log
    state = json.loads((out / "checkpoints" / "step_000004" / "trainer.json").read_text())
    assert state["trained"] == [0, 1, 2, 3]  # every batch once, in order
    assert _steps(out) == [0, 1, 2, 3]
    assert state["version"] == 4
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["weight_sync/bytes"] > 0 and last["weight_sync/group_builds"] == 1


def _wait_for_checkpoint(proc, out: Path, name: str) -> None:
    latest = out / "checkpoints" / "latest"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        if latest.exists() and latest.read_text().strip() == name:
            return
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    pytest.fail(f"no checkpoint {name}")


def test_a_lost_learner_rank_is_rebuilt_and_the_run_goes_on_by_itself(tmp_path):
    """The learner's process is killed after the second checkpoint: the run rebuilds its
    components, continues from that checkpoint without a person, and trains every batch once."""
    import psutil

    out = tmp_path / "run"
    proc = _train(out, 4, "run.max_failures=1")
    _wait_for_checkpoint(proc, out, "step_000002")
    ranks = [p for p in psutil.Process(proc.pid).children(recursive=True) if "LearnerRank" in " ".join(p.cmdline())]
    assert len(ranks) == 1, [p.cmdline() for p in psutil.Process(proc.pid).children(recursive=True)]
    ranks[0].kill()
    log, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, log[-3000:]
    assert "recovery 1 of 1" in log and "continuing from step_00000" in log
    state = json.loads((out / "checkpoints" / "step_000004" / "trainer.json").read_text())
    assert state["trained"] == [0, 1, 2, 3] and state["version"] == 4  # every batch once, in order
    assert _steps(out) == [0, 1, 2, 3]  # the data position went on where the checkpoint left it


def test_a_run_refuses_to_overwrite_checkpoints_without_resume(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints" / "step_000001").mkdir(parents=True)
    (out / "checkpoints" / "step_000001" / "trainer.json").write_text("{}")
    (out / "checkpoints" / "latest").write_text("step_000001")
    proc = _train(out, 2)
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--resume" in log


def test_ray_job_submit_runs_the_tiny_training(tmp_path):
    env = _env()
    env.update(RAY_AUTH_MODE="disabled", PATH=f"{BIN}:{env['PATH']}")
    ray = str(BIN / "ray")
    port = 8265 + os.getpid() % 500
    start = [
        ray, "start", "--head", "--num-cpus=3", "--object-store-memory=300000000",
        f"--dashboard-port={port}", "--include-dashboard=true", "--disable-usage-stats",
        # another Ray in this process (the session's ray_cluster) holds the default agent ports
        f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
        f"--metrics-export-port={_free_port()}", f"--port={_free_port()}",
        f"--temp-dir={tempfile.mkdtemp(prefix='ray', dir='/tmp')}",  # socket paths must stay short
    ]  # fmt: skip
    temp = start[-1].split("=", 1)[1]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        out = tmp_path / "job-run"
        env["RAY_ADDRESS"] = f"http://127.0.0.1:{port}"
        env["RAY"] = ray
        submit = [str(ROOT / "deploy" / "submit.sh"), "tiny-cpu", f"run.out_dir={out}", "run.steps=1", *SMALL]
        # accepted, then polled: tailing logs over a WebSocket can drop on a loaded machine
        env.update(SUBMIT_ID=f"tiny-{os.getpid()}", SUBMIT_NO_WAIT="1")
        for _ in range(12):  # the head's job agent can take a while to come up on a busy machine
            done = subprocess.run(submit, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
            if "No available agent" not in done.stdout + done.stderr:
                break
            time.sleep(5)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        status = ""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = subprocess.run(
                [ray, "job", "status", env["SUBMIT_ID"]], env=env, capture_output=True, text=True, timeout=60
            ).stdout.lower()
            if any(f"job '{env['SUBMIT_ID']}' {word}" in status for word in ("succeeded", "failed", "stopped")):
                break
            time.sleep(3)
        logs = subprocess.run([ray, "job", "logs", env["SUBMIT_ID"]], env=env, capture_output=True, text=True)
        assert "succeeded" in status, (status + logs.stdout)[-3000:]
        assert "checkpoints in" in logs.stdout
        assert (out / "checkpoints" / "step_000001" / "trainer.json").exists()
        assert list((out / "wandb").glob("offline-run-*"))
    finally:
        _stop_head(temp)
        shutil.rmtree(temp, ignore_errors=True)


def _stop_head(temp: str) -> None:
    """Stop only this test's head: the processes whose command line names its temp dir (its
    workers exit with their raylet). `ray stop` would stop every Ray on the machine."""

    def ours() -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and temp.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ours():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while ours() and time.monotonic() < deadline:
            time.sleep(0.2)
