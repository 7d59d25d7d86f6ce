"""`tlgrpo soak`, short: a real tiny training on a real two-node Ray cluster and real ngspice,
with simulation actors, a rollout actor and a learner rank killed, ngspice hanging and killing
itself, and the second node joining and leaving. Nothing may be lost or trained twice."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

BIN = Path(sys.executable).parent


def test_a_short_soak_loses_nothing_and_trains_every_batch_once(tmp_path):
    out = tmp_path / "soak"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0", HF_HUB_OFFLINE="1")
    cmd = [str(BIN / "tlgrpo"), "soak", "--out", str(out), "--steps", "5", "--seed", "1"]
    cmd += ["--sim-kill-every", "4", "--death-every", "1", "--node-every", "15"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "soak.json").read_text())
    faults = report["faults"]
    # every kind of fault happened at least once
    for kind in ("ngspice hangs (trap designs)", "ngspice crashes (trap designs)", "sim_actor_killed"):
        assert faults[kind] >= 1, faults
    assert faults["rollout_actor_killed"] >= 1 and faults["learner_rank_killed"] >= 1, faults
    assert faults["node_added"] >= 1 and faults["node_removed"] >= 1, faults
    sims = report["simulations"]
    assert sims["load"]["lost"] == 0 and sims["training"]["lost"] == 0
    assert sims["load"]["requested"] == sum(sims["load"]["answered"].values())
    assert sims["load"]["checked_wrong"] == sims["load"]["infrastructure"], sims["load"]["wrong"]
    assert sims["load"]["answered"].get("timeout", 0) >= 1  # a hang came back as a timeout
    train = report["training"]
    assert train["lineage"] == {"steps": 5, "trained": 5, "trained_twice": 0, "skipped": [], "in_order": True}
    assert train["recoveries"], "the learner rank's death made the driver rebuild"
    assert not train["data_position"]["steps_with_other_queries"]
    assert "| steps trained twice | 0 |" in (out / "soak.md").read_text()
