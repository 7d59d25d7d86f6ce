"""A run folder on object storage, against a real S3 API: moto's server on localhost, reached with
the same client a user's bucket sees (s3fs over botocore, credentials from the standard AWS_*
variables). A tiny-cpu run to s3://bucket/run; the same run killed after a checkpoint and resumed
from the bucket with nothing trained twice; a checkpoint whose upload was cut off never taken as
the latest; a model folder on the bucket fetched once into the node's cache."""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.test_train_e2e import BIN, ROOT, kill_when
from tests.test_train_e2e import SMALL as E2E_SMALL
from tests.test_train_e2e import _env as e2e_env

pytest.importorskip("moto")
pytest.importorskip("s3fs")

SMALL = [
    *E2E_SMALL,
    "run.eval_every=0",
    "run.checkpoint_every=1",
    # a 2-episode format warm-up: its records, checkpoints and model go to the bucket too
    "warmup.episodes=2",
    "warmup.batch_episodes=2",
    "warmup.epochs=1",
]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 server on localhost and the environment that points every client at it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TLGRPO_STORE_CACHE": str(tmp_path_factory.mktemp("store-cache")),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir("bucket")
    try:
        yield fs, env
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3fs.S3FileSystem.clear_instance_cache()


def _env(extra: dict) -> dict:
    return {**e2e_env(), **extra}


def _train(uri: str, steps: int, env: dict, *extra: str, **kw) -> subprocess.Popen:
    cmd = [str(BIN / "tlgrpo"), "train", "tiny-cpu", f"run.out_dir={uri}", f"run.steps={steps}", *SMALL, *extra]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw
    )


def _metrics_steps(fs, path: str) -> list[int]:
    fs.invalidate_cache()
    return [json.loads(line)["step"] for line in fs.cat_file(path).decode().splitlines()]


@pytest.mark.slow
@pytest.mark.ray
def test_a_run_killed_after_a_checkpoint_resumes_from_the_bucket_and_trains_nothing_twice(s3):
    fs, env = s3
    uri = "s3://bucket/run"
    proc = _train(uri, 3, env, start_new_session=True)

    def pushed() -> bool:  # step 0 checkpointed and its metrics pushed
        fs.invalidate_cache()
        return fs.exists("bucket/run/checkpoints/step_000001/COMPLETE") and fs.exists("bucket/run/metrics.jsonl")

    kill_when(proc, pushed, "first checkpoint in the bucket")
    fs.invalidate_cache()
    assert fs.exists("bucket/run/config.yaml")

    resumed = _train(uri, 3, env, "--resume")
    log, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, log[-3000:]
    assert f"resumed from {uri}/checkpoints/step_00000" in log
    fs.invalidate_cache()
    state = json.loads(fs.cat_file("bucket/run/checkpoints/step_000003/trainer.json"))
    assert state["step"] == 3 and state["trained"] == [0, 1, 2]  # each batch once, across the kill
    assert _metrics_steps(fs, "bucket/run/metrics.jsonl") == [0, 1, 2]  # complete in the bucket
    assert fs.exists("bucket/run/final/config.json") and fs.exists("bucket/run/final/model.safetensors")
    assert fs.exists("bucket/run/base_model/config.json")  # built by the driver, read by every rank from here
    assert fs.exists("bucket/run/warmup/final/model.safetensors") and fs.exists("bucket/run/warmup/sft_metrics.jsonl")
    assert "format warm-up:" not in log  # the resumed run found the warm-up's model in the bucket
    assert fs.exists("bucket/run/eval/step_000003/results.json")
    kept = sorted(p.rsplit("/", 1)[1] for p in fs.ls("bucket/run/checkpoints"))
    assert kept == ["step_000002", "step_000003"]  # run.keep_checkpoints 2, every kept one whole
    assert all(fs.exists(f"bucket/run/checkpoints/{name}/COMPLETE") for name in kept)
    assert "testing" not in log  # no credential is printed


def test_a_checkpoint_cut_off_in_its_upload_is_never_the_latest(s3, capsys):
    import torch

    from learner import persist
    from system.rl.checkpoints import TrainerState, checkpoints_for

    fs, _ = s3
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters())
    checkpoints = checkpoints_for("s3://bucket/cut", keep=2)
    assert checkpoints.latest() is None
    first = checkpoints.save(TrainerState(1, 1, 0, [0]), lambda path: persist.save(model, optimizer, path))
    assert first == "s3://bucket/cut/checkpoints/step_000001"

    def cut(path: str) -> None:  # the learner's shards written, then the process dies before the marker
        persist.save(model, optimizer, path)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoints.save(TrainerState(2, 2, 0, [0, 1]), cut)
    fs.invalidate_cache()
    assert fs.exists("bucket/cut/checkpoints/step_000002/learner/.metadata")  # there, but not whole
    assert checkpoints.latest() == first
    assert "step_000002 has no COMPLETE marker (its upload was cut off): removed" in capsys.readouterr().out
    fs.invalidate_cache()
    assert not fs.exists("bucket/cut/checkpoints/step_000002")
    assert checkpoints.load_state(first).trained == [0]
    # the shards read back straight from the bucket
    with torch.no_grad():
        model.weight.zero_()
    persist.load(model, optimizer, checkpoints.learner_dir(first))
    assert model.weight.abs().sum() > 0


def test_a_model_on_the_bucket_is_fetched_once_into_the_node_cache(s3, tmp_path):
    from system.models.tiny import build_tiny_model
    from wire.storage import StorageError, local_copy, upload

    assert s3  # the server, and the environment that points the client at it
    folder = build_tiny_model(tmp_path / "tiny")
    upload(folder, "s3://bucket/models/tiny")
    first = Path(local_copy("s3://bucket/models/tiny"))
    assert (first / "config.json").read_text() == (folder / "config.json").read_text()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert Path(local_copy("s3://bucket/models/tiny")) == first  # cached: not fetched again
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    (first / "model.safetensors").write_bytes(b"cut short")  # a copy whose size no longer matches
    assert local_copy("s3://bucket/models/tiny") == str(first)
    assert (first / "model.safetensors").stat().st_size == (folder / "model.safetensors").stat().st_size
    with pytest.raises(StorageError, match="s3://bucket/models/none: nothing there"):
        local_copy("s3://bucket/models/none")
    assert local_copy(str(folder)) == str(folder)  # a plain path is itself


def test_a_missing_credential_is_one_line_naming_the_uri(s3, tmp_path):
    _, env = s3
    bare = {k: v for k, v in _env(env).items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    bare.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"))
    bare.update(AWS_EC2_METADATA_DISABLED="true")
    cmd = [str(BIN / "tlgrpo"), "train", "tiny-cpu", "run.out_dir=s3://bucket/nokey", "run.steps=1"]
    done = subprocess.run(cmd, cwd=ROOT, env=bare, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tlgrpo: s3://bucket/nokey/checkpoints: listing failed (NoCredentialsError"), last
    assert "Traceback" not in done.stderr
