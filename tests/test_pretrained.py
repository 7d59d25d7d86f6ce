"""The installed pretrained model (SmolLM2-135M-Instruct, `tlgrpo model install smollm2-135m`, run
by scripts/setup.sh) on the HF engine: its template has no tools block, so the schema goes into a
Hermes-style system message; sampled ids and log-probs match a transformers forward pass, also after
a weight update; and the ids an episode keeps are exactly the ids sampled."""

import asyncio

import pytest
import torch

from simworkers.catalog import load_task
from simworkers.query import near_reference_query, seed_for
from system.agent.conversation import ChatFormat, engine_speaker, token_opener
from system.agent.protocol import parse_reply, tool_schema
from system.models.install import resolve_model
from wire.sampling import Sampling

TASK = load_task("ota5t_generic")
SHORT = Sampling(max_new_tokens=24, temperature=1.0, top_p=1.0, seed=3)


@pytest.fixture(scope="module")
def path():
    return resolve_model("smollm2-135m")  # fails with the command to run when it is not installed


@pytest.fixture(scope="module")
def engine(path):
    from actors.hf_engine import HFEngine

    return HFEngine(path)


def _forward_logprobs(model, prompt: list[int], ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([prompt + ids])).logits[0, :-1].float()
    logp = torch.log_softmax(logits, -1)[len(prompt) - 1 :]
    return logp.gather(1, torch.tensor(ids)[:, None])[:, 0]


def test_the_tool_schema_goes_into_a_hermes_system_message(engine):
    fmt = ChatFormat(engine.tokenizer)
    assert not fmt.renders_tools  # SmolLM2's ChatML template drops `tools=`
    text = engine.tokenizer.decode(fmt.prompt_ids("Size the amplifier.", [tool_schema(TASK)]))
    assert text.startswith("<|im_start|>system\nYou are a function calling AI model")
    assert '"name": "simulate"' in text and "<tool_call>" in text and '"w_in"' in text
    assert text.rstrip().endswith("<|im_start|>assistant")
    # and a reply in that convention parses as today
    reply = '<Analyze>more gm</Analyze>\n<tool_call>\n{"name": "simulate", "arguments": {"w_in": "40u"}}\n</tool_call>'
    parsed = parse_reply(reply, TASK)
    assert parsed.action == "call" and parsed.format_ok and parsed.arguments["w_in"] in ("40u", 40e-6)


def test_sampled_logprobs_match_a_forward_pass_before_and_after_a_weight_update(engine):
    fmt = ChatFormat(engine.tokenizer)
    prompt = fmt.prompt_ids("Size the amplifier.", [tool_schema(TASK)])
    generation = engine.generate(prompt, SHORT)
    assert generation.ids and len(generation.ids) == len(generation.logprobs)
    expected = _forward_logprobs(engine.model, prompt, generation.ids)
    assert torch.allclose(torch.tensor(generation.logprobs), expected, atol=2e-3)

    state = {k: v.clone() for k, v in engine.model.state_dict().items()}
    try:
        changed = {k: v * 0.9 if ".mlp." in k else v for k, v in state.items()}
        engine.update_weights(5, changed)
        after = engine.generate(prompt, SHORT)
        assert after.version == 5
        fresh = type(engine.model).from_pretrained(engine_path(engine), dtype=torch.float32).eval()
        fresh.load_state_dict(changed)
        assert torch.allclose(torch.tensor(after.logprobs), _forward_logprobs(fresh, prompt, after.ids), atol=2e-3)
    finally:
        engine.update_weights(0, state)


def engine_path(engine) -> str:
    return engine.model.config._name_or_path


def test_an_episode_keeps_exactly_the_ids_it_sampled(engine):
    from system.agent.policies import LLMPolicy

    sampled: list[list[int]] = []

    class Recording:
        def generate(self, ids, sampling):
            generation = engine.generate(ids, sampling)
            sampled.append(list(generation.ids))
            return generation

    fmt = ChatFormat(engine.tokenizer)
    policy = LLMPolicy("smollm2", token_opener(engine_speaker(Recording(), SHORT), fmt))
    query = near_reference_query(TASK, seed_for("eval", 0))

    async def simulate(task, design):
        from simworkers.query import simulate_here

        return simulate_here(task, design)

    episode = asyncio.run(policy.run(TASK, query, "multi-turn", 2, simulate))
    spans = [t.action_span for t in episode.turns[1:] if t.action_span]
    assert len(spans) == len(sampled) >= 1
    for (start, end), ids in zip(spans, sampled):
        assert episode.ids[start:end] == ids


def test_model_install_is_idempotent_and_names_resolve(path, capsys, tmp_path):
    from system.cli.main import main
    from system.models.install import ModelError, install, model_dir

    assert install("smollm2-135m") == model_dir("smollm2-135m")  # installed already: nothing fetched
    assert "ready at" in capsys.readouterr().out
    assert main(["model", "list"]) == 0
    assert f"smollm2-135m   {path}" in capsys.readouterr().out
    with pytest.raises(ModelError, match="installable are smollm2-135m"):
        install("gpt-9")
    with pytest.raises(ModelError, match=r"no model folder at .*known: smollm2-135m"):
        resolve_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"holds no config\.json"):
        resolve_model(str(tmp_path / "empty"))


def test_a_missing_install_says_what_to_run(monkeypatch, tmp_path):
    from system.models.install import ModelError

    monkeypatch.setenv("TLGRPO_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelError, match=r"run `tlgrpo model install smollm2-135m`"):
        resolve_model("smollm2-135m")
