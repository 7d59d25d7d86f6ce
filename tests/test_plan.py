"""`tlgrpo plan`: exact parameter counts from the meta-device model, the activation arithmetic
held to a measured CPU run, the step's tokens by hand, and refusals that name the key and fix."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from system.cli.main import main
from system.config import ConfigError, load_config
from system.plan.architecture import describe, load_architecture
from system.plan.arithmetic import Workload, learner_memory, step_tokens

ROOT = Path(__file__).parent.parent
MEMORY_TOLERANCE = 0.25  # the activation estimate against a measured peak, either way


def test_the_shipped_moe_architecture_is_counted_like_its_meta_model():
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = load_config("qwen3-30b-a3b")
    arch = load_architecture(cfg)  # model.path /mnt/.../Qwen3-30B-A3B finds configs/models/qwen3-30b-a3b
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(ROOT / "configs/models/qwen3-30b-a3b"))
    assert arch.params == sum(p.numel() for p in model.parameters())
    assert 30.0e9 < arch.params < 31.0e9  # the published 30.5B
    assert 3.2e9 < arch.active_params < 3.5e9  # "A3B": 8 of 128 experts a token
    assert arch.experts == 128 and arch.layers == 48 and arch.kv_bytes_per_token == 2 * 48 * 512 * 2


def test_the_tiny_architecture_counts_what_a_built_model_holds(tmp_path):
    from transformers import AutoModelForCausalLM

    from system.models.tiny import TINY_VOCAB, tiny_config

    cfg = load_config("tiny-cpu", [f"run.out_dir={tmp_path}"])  # no built model there: the config's architecture
    planned = load_architecture(cfg)
    real = describe("built", AutoModelForCausalLM.from_config(tiny_config(TINY_VOCAB, 128, 2)))
    assert planned.params == real.params and planned.layer_params == real.layer_params
    assert planned.root_params + 2 * planned.layer_params == planned.params  # two layers and the root unit
    assert planned.experts == 0 and planned.active_params == planned.params


@pytest.mark.parametrize(("hidden", "layers", "tokens", "checkpointing"), [(256, 4, 8192, False), (256, 4, 8192, True)])
def test_activation_arithmetic_matches_a_measured_cpu_update(tmp_path, hidden, layers, tokens, checkpointing):
    overrides = [f"run.out_dir={tmp_path}", f"model.tiny.hidden={hidden}", f"model.tiny.layers={layers}"]
    cfg = load_config("tiny-cpu", overrides)
    arch = load_architecture(cfg)
    memory = learner_memory(arch, 1, tokens, gpu=False, bf16=False, checkpointing=checkpointing, reference=False)
    command = [sys.executable, "-m", "system.plan.measure", str(hidden), str(layers), str(tokens)]
    out = subprocess.run(
        [*command, *(["--checkpointing"] if checkpointing else [])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(out.stdout.strip().splitlines()[-1])["peak_extra"]
    planned = memory.activations + memory.working
    assert abs(planned / measured - 1) <= MEMORY_TOLERANCE, (planned, measured)


def test_step_tokens_by_hand():
    w = Workload(
        "tl_grpo",
        queries=2,
        group=3,
        budget=2,
        prompt_tokens=100,
        response_tokens=10,
        new_tokens=20,
        max_prompt_tokens=125,
    )
    assert [w.history(1), w.history(2)] == [100, 125]  # 100 + 30 capped at 125
    t = step_tokens(w)
    assert t.generated == 2 * 3 * 2 * 20
    assert t.trained_shared == 2 * ((100 + 3 * 20) + (125 + 3 * 20))
    assert t.trained_unshared == 2 * 3 * ((100 + 20) + (125 + 20))
    assert t.simulations == 2 * (1 + 2 * 3)
    traj = step_tokens(Workload("traj_grpo", 2, 3, 2, 100, 10, 20, 125))
    assert traj.trained_shared == traj.trained_unshared == 2 * 3 * (125 + 20)


def test_memory_arithmetic_shards_what_fsdp_shards():
    arch = load_architecture(load_config("qwen3-30b-a3b"))
    one = learner_memory(arch, 8, 4096, gpu=True, bf16=True, checkpointing=True, reference=False)
    two = learner_memory(arch, 16, 4096, gpu=True, bf16=True, checkpointing=True, reference=False)
    assert one.optimizer == pytest.approx(2 * two.optimizer, rel=1e-6)  # sharded state halves
    assert one.activations == two.activations and one.gathered == two.gathered  # per-rank pieces do not
    off = learner_memory(arch, 8, 4096, gpu=True, bf16=True, checkpointing=False, reference=False)
    assert off.activations > 10 * one.activations


def _plan(capsys, *argv):
    code = main(["plan", *argv, "--sim-ms", "40"])
    return code, capsys.readouterr()


def test_the_paper_config_plans_in_seconds_and_a_cluster_too_small_is_refused(capsys):
    code, out = _plan(capsys, "qwen3-30b-a3b", "--gpus-per-node", "8", "--gpu-memory", "80", "--nodes", "2")
    assert code == 2
    assert "30,532,122,624 parameters" in out.out
    assert "refused: learner.world_size: the config asks for 24 GPUs" in out.out
    code, out = _plan(capsys, "qwen3-30b-a3b", "--nodes", "3")
    assert code == 0 and "fits: no key refused" in out.out


@pytest.mark.parametrize(
    ("overrides", "key", "fix"),
    [
        (["learner.activation_checkpointing=false"], "learner.activation_checkpointing", "=true"),
        (["learner.micro_batch_tokens=262144"], "learner.micro_batch_tokens", "or fewer"),
        (["learner.world_size=2", "rollout.actors=1"], "learner.world_size", "or more"),
    ],
)
def test_a_learner_that_cannot_fit_is_refused_with_its_key_and_fix(capsys, overrides, key, fix):
    code, out = _plan(capsys, "qwen3-30b-a3b", *overrides, "--nodes", "3")
    assert code == 2
    refused = [line for line in out.out.splitlines() if line.startswith("refused:")]
    assert refused and refused[0].startswith(f"refused: {key}:") and fix in refused[0]


def test_an_engine_without_room_for_one_sequence_is_refused(capsys):
    code, out = _plan(capsys, "qwen3-30b-a3b", "--gpu-memory", "48", "--nodes", "3")
    assert code == 2 and "refused: rollout.gpus_per_actor:" in out.out


def test_an_unknown_experts_implementation_is_a_config_error():
    with pytest.raises(ConfigError, match=r"learner\.experts"):
        load_config("qwen3-30b-a3b", ["learner.experts=loop"])


def test_plan_refuses_an_unknown_architecture_and_bad_hardware(capsys):
    assert main(["plan", "tiny-cpu", "--architecture", "nope", "--sim-ms", "1"]) == 2
    assert "--architecture nope: no such shipped architecture" in capsys.readouterr().err
    assert main(["plan", "tiny-cpu", "--nodes", "0", "--sim-ms", "1"]) == 2
    assert "--nodes 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("capability", "kernel", "names"), [((7, 5), True, "7.5, below 8.0"), ((9, 0), False, "no grouped GEMM")]
)
def test_grouped_mm_experts_are_refused_where_transformers_would_loop_in_silence(
    monkeypatch, capability, kernel, names
):
    """On a GPU before SM80, or a torch without a grouped GEMM, transformers' grouped_mm experts
    quietly become a Python loop: the learner rank refuses to start and names the key instead.
    (No GPU here: the device's answers are what is replaced.)"""
    import torch

    from learner.rank import require_grouped_mm

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a test GPU")
    if not kernel:
        monkeypatch.delattr(torch.nn.functional, "grouped_mm", raising=False)
        monkeypatch.delattr(torch, "_grouped_mm", raising=False)
    with pytest.raises(RuntimeError, match=f"learner.experts=grouped_mm: .*{names}.*learner.experts=eager"):
        require_grouped_mm(torch.device("cuda", 0))
    if kernel:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
        require_grouped_mm(torch.device("cuda", 0))  # an A100 passes


def test_plan_states_the_checkpoint_size_and_its_upload_time():
    from system.cli.plan import checkpoint_line

    line = checkpoint_line(1_000_000_000, 10, 8.0)  # 12 GB a save at 1 GB/s
    assert line.startswith("checkpoint  11.2 GiB a save (12 bytes a parameter") and "every 10 steps; 12 s" in line
