"""scripts/compare.sh refuses a run it cannot make before it starts anything (the warm-up alone
takes 20 minutes): an unknown method or engine, a variant run whose settings are not given, or a
warm-up evaluation order it does not know."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare.sh"


def _compare(out: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), str(out)], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


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
