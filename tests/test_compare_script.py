"""scripts/compare.sh refuses a run it cannot make before it starts anything (the warm-up alone
takes 20 minutes): an unknown method or engine, a variant run whose settings are not given, or a
warm-up evaluation order it does not know."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare.sh"


def _compare(out: Path, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TLGRPO_DATA_DIR": str(out.parent / "data"), **env}  # its query sets, built there
    return subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"METHODS": "tl_grpo ppo"}, "ppo: not a method (tl_grpo, traj_grpo, single_turn, gtpo) or METHOD_VARIANT"),
        ({"METHODS": "tl_grpo_own"}, "tl_grpo_own: set VARIANT_own to the variant's config overrides"),
        ({"ENGINE": "vlm"}, "ENGINE=vlm: use hf or vllm"),
        ({"WARMUP_EVAL": "early"}, "WARMUP_EVAL=early: use first or last"),
    ],
)
def test_a_run_it_cannot_make_stops_the_script_before_anything_starts(tmp_path, env, says):
    out = tmp_path / "compare"
    done = _compare(out, **env)
    assert done.returncode == 2 and says in done.stderr
    assert not out.exists()


def _warmed_up(out: Path, weights: bytes) -> None:
    """A finished warm-up, as far as the script looks: its final folder and weights."""
    (out / "warmup" / "final").mkdir(parents=True)
    (out / "warmup" / "final" / "config.json").write_text("{}")
    (out / "warmup" / "final" / "model.safetensors").write_bytes(weights)


def _evaluation(folder: Path, policy: str) -> None:
    folder.mkdir(parents=True)
    row = {"method": f"{policy} (multi-turn)", "per_task": {"a": 0.5}, "averages": {"in-domain": 0.5}}
    row |= {"format_error_rate": 0.1, "history_best": [0.1, 0.5]}
    settings = {"queries": 2, "budget": 5, "wall_s": 1.0}
    result = {"settings": settings, "tasks": ["a"], "initial": {"a": 0.1}, "rows": [row]}
    (folder / "results.json").write_text(json.dumps(result))


def test_a_new_machine_stops_when_its_warm_up_is_not_the_one_the_kept_runs_started_from(tmp_path):
    out, keep = tmp_path / "compare", tmp_path / "kept"
    _warmed_up(out, b"new weights")
    (keep / "warmup").mkdir(parents=True)
    (keep / "warmup" / "weights.sha256").write_text("0" * 64 + "  model.safetensors\n")
    done = _compare(out, KEEP=str(keep), METHODS="tl_grpo", SEEDS="0")
    assert done.returncode == 1, done.stderr
    assert f"{out}/warmup/final is not the warm-up that the runs kept in {keep} started from" in done.stderr
    assert not list(out.glob("eval-*"))  # nothing evaluated or trained from it


def test_a_new_machine_with_the_same_warm_up_skips_what_the_kept_outputs_hold(tmp_path):
    """The kept runs and evaluations are not run again: the script goes straight to the report,
    built from the kept folder."""
    out, keep = tmp_path / "compare", tmp_path / "kept"
    _warmed_up(out, b"weights")
    (keep / "warmup").mkdir(parents=True)
    digest = hashlib.sha256(b"weights").hexdigest()
    (keep / "warmup" / "weights.sha256").write_text(f"{digest}  model.safetensors\n")
    for name in ("baselines", "warmup", "tl_grpo-s0"):
        for domain in ("in", "out"):
            _evaluation(keep / f"eval-{domain}-{name}", "bo" if name == "baselines" else f"hf:{out}/{name}/final")
    (keep / "tl_grpo-s0").mkdir()
    (keep / "tl_grpo-s0" / "metrics.jsonl").write_text(json.dumps({"step": 0, "reward/mean": 0.1}) + "\n")
    done = _compare(out, KEEP=str(keep), METHODS="tl_grpo", SEEDS="0")
    assert done.returncode == 0, done.stderr
    assert (out / "warmup" / "weights.sha256").read_text() == f"{digest}  model.safetensors\n"
    assert not (out / "tl_grpo-s0").exists() and not list(out.glob("eval-*"))
    assert (tmp_path / "data" / "front" / "eval" / "ota5t_generic.parquet").exists()  # a new machine builds them
    report = (keep / "report.md").read_text()
    assert "| tl_grpo |" in report and "| warm-up |" in report and "| tl_grpo s0 | 1 |" in report
