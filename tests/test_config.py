"""Training configs: shipped files load; a bad value is refused with its key and what is allowed."""

import pytest

from system.config import ConfigError, load_config, parse_overrides


@pytest.mark.parametrize("name", ["tiny-cpu", "single-gpu", "qwen3-30b-a3b", "compare-cpu"])
def test_shipped_configs_load(name):
    cfg = load_config(name)
    assert cfg.algorithm.name == "tl_grpo"


def test_the_paper_setting():
    cfg = load_config("qwen3-30b-a3b")
    a, s, loss = cfg.algorithm, cfg.rollout.sampling, cfg.learner.loss
    assert (a.queries_per_step, a.group_size, a.budget) == (32, 8, 5)
    assert (s.temperature, s.top_p, s.max_new_tokens) == (1.0, 0.95, 4096)
    assert (loss.eps_low, loss.eps_high, loss.kl_coef) == (0.2, 0.28, 0.0)
    assert cfg.rollout.engine == "vllm" and cfg.learner.lr == 1e-6
    assert cfg.rollout.max_prompt_tokens == 15000 and cfg.rollout.weight_sync == "collective"


def test_overrides_are_typed_and_nested():
    cfg = load_config("tiny-cpu", ["algorithm.group_size=6", "learner.loss.eps_high=0.3", "run.name=x"])
    assert cfg.algorithm.group_size == 6 and cfg.learner.loss.eps_high == 0.3 and cfg.run.name == "x"
    # YAML 1.1 reads 2e-3 (no dot) as a string; a config value written so is the number
    assert load_config("tiny-cpu", ["learner.lr=2e-3"]).learner.lr == 0.002


@pytest.mark.parametrize(
    "override, words",
    [
        ("algorithm.name=ppo", ["algorithm.name", "'tl_grpo'", "'gtpo'"]),
        ("algorithm.group_size=1", ["algorithm.group_size", "at least 2"]),
        ("algorithm.group_sise=4", ["algorithm.group_sise", "group_size"]),
        ("learner.lr=fast", ["learner.lr", "a number"]),
        ("rollout.sampling.top_p=1.5", ["rollout.sampling.top_p"]),
        ("algorithm.staleness=3", ["algorithm.staleness"]),
        ("rollout.weight_sync=nccl", ["rollout.weight_sync", "'collective'", "'object_store'"]),
        ("rollout.max_prompt_tokens=0", ["rollout.max_prompt_tokens", "at least 1"]),
        ("run.steps=true", ["run.steps", "an integer"]),
        ("tasks.train=[no_such_task]", ["tasks.train", "no_such_task"]),
        ("run.eval_baselines=[gpt]", ["run.eval_baselines", "'random'"]),
        ("learner.old_logprobs=engine learner.minibatches=2", ["learner.old_logprobs", "minibatches"]),
        ("rollout.dtype=float16", ["rollout.dtype", "'bfloat16'"]),
        ("warmup.changes=-1", ["warmup.changes", "0"]),
        ("algorithm.cut_replies=penalise", ["algorithm.cut_replies", "'allowed'", "'malformed'"]),
    ],
)
def test_bad_values_name_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("tiny-cpu", override.split())
    for word in words:
        assert word in str(err.value)


def test_bad_override_syntax_and_unknown_config():
    with pytest.raises(ConfigError, match=r"key\.sub=value"):
        parse_overrides(["group_size"])
    with pytest.raises(ConfigError, match="tiny-cpu"):
        load_config("no-such-config")


def test_cli_refuses_a_bad_config_before_starting(capsys):
    from system.cli import main

    assert main(["train", "tiny-cpu", "algorithm.name=ppo"]) == 2
    assert "algorithm.name" in capsys.readouterr().err
