"""Rollout actors with the HF engine: batching changes nothing but speed, weights arrive by
version, and a TL-GRPO rollout runs on real Ray actors and the real simulation pool."""

import asyncio
from pathlib import Path

import pytest
import torch

from actors.fleet import RolloutFleet
from actors.hf_engine import HFEngine, shared_prefixes
from actors.rollout import BatchingEngine, RolloutActor
from wire.sampling import Sampling


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from system.models.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def test_batched_generation_equals_one_at_a_time(tiny):
    engine = HFEngine(tiny)
    batching = BatchingEngine(engine, batch_window_s=0.05)
    greedy = Sampling(max_new_tokens=10, temperature=0)
    prompts = [engine.tokenizer.encode("<Analyze> gain " * k) for k in (1, 4, 9)]
    alone = [engine.generate(p, greedy) for p in prompts]

    async def together():
        return await asyncio.gather(*(batching.generate(p, greedy) for p in prompts))

    batched = asyncio.run(together())
    assert batching.batches == 1 and batching.batched_requests == 3
    for a, b in zip(alone, batched):
        assert a.ids == b.ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_a_shared_prefix_is_computed_once_and_changes_no_sample(tiny):
    engine = HFEngine(tiny)
    base = engine.tokenizer.encode("<Analyze> gain " * 12)
    other = list(range(5, 30))
    prompts = [base, base, base + engine.tokenizer.encode(" bandwidth"), other, other]
    prefixes, owner = shared_prefixes(prompts)
    assert owner == [0, 0, 0, 1, 1] and prefixes == [base[:-1], other[:-1]]
    greedy = Sampling(max_new_tokens=10, temperature=0)
    alone = [engine.generate(p, greedy) for p in prompts]
    together = engine.generate_batch(prompts, greedy)
    for prompt, a, b in zip(prompts, alone, together):
        assert a.ids == b.ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        # and both are the model's own log-probs of those ids, from one plain forward pass
        with torch.no_grad():
            logits = engine.model(torch.tensor([prompt + b.ids])).logits[0, len(prompt) - 1 : -1]
        expected = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(b.ids)[:, None])[:, 0]
        assert b.logprobs == pytest.approx(expected.tolist(), abs=1e-4)


@pytest.mark.ray
def test_rollout_actor_generates_and_takes_new_weights_by_version(ray_cluster, tiny):
    import ray

    actor = ray.remote(num_cpus=0.5, max_concurrency=16)(RolloutActor).remote(tiny)
    prompt = list(range(5, 40))
    greedy = Sampling(max_new_tokens=8, temperature=0)
    first = ray.get(actor.generate.remote(prompt, greedy))
    assert first.version == 0 and len(first.ids) == len(first.logprobs) > 0
    engine = HFEngine(tiny)
    weights = {k: v.clone() for k, v in engine.model.state_dict().items()}
    weights["model.norm.weight"] = -weights["model.norm.weight"]  # a different policy
    assert ray.get(actor.update_weights.remote(1, ray.put(weights))) == 1
    second = ray.get(actor.generate.remote(prompt, greedy))
    assert second.version == 1 and ray.get(actor.version.remote()) == 1
    assert second.ids != first.ids or second.logprobs != pytest.approx(first.logprobs)
    ray.kill(actor)


VLLM_PYTHON = Path(__file__).resolve().parent.parent / ".venv-vllm" / "bin" / "python"


def test_an_interpreter_that_is_not_there_is_refused_by_name():
    from actors.runtime_env import actor_runtime_env

    assert actor_runtime_env(None) is None
    assert actor_runtime_env(None, threads=3) == {"env_vars": {"OMP_NUM_THREADS": "3"}}
    with pytest.raises(ValueError, match=r"rollout.python: '.venv-nope/bin/python' is not an executable"):
        actor_runtime_env(".venv-nope/bin/python")


@pytest.mark.ray
@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="no .venv-vllm: set-up ran with TLGRPO_SKIP_VLLM=1")
def test_a_vllm_rollout_actor_runs_in_the_vllm_environment_and_takes_weights(ray_cluster, tiny):
    """rollout.python: the vLLM engine on CPU runs under .venv-vllm (its transformers pin differs
    from the trainer's), called from this environment like any rollout actor."""
    import ray

    from actors.runtime_env import actor_runtime_env

    # two threads on half a CPU: Ray's OMP_NUM_THREADS would say 1, and the engine's kernels
    # would find another thread count than they were planned with
    env = actor_runtime_env(".venv-vllm/bin/python", threads=2)

    def interpreter():
        import sys

        import transformers
        import vllm

        return sys.executable, transformers.__version__, vllm.__version__

    executable, transformers_version, _ = ray.get(ray.remote(num_cpus=0, runtime_env=env)(interpreter).remote())
    assert Path(executable) == VLLM_PYTHON
    assert tuple(int(x) for x in transformers_version.split(".")[:2]) < (5, 20)
    remote = ray.remote(num_cpus=0.5, max_concurrency=16, runtime_env=env)(RolloutActor)
    actor = remote.remote(tiny, 0.005, 8, 2, "vllm", 64)
    prompt = list(range(5, 40))
    greedy = Sampling(max_new_tokens=8, temperature=0)
    first = ray.get(actor.generate.remote(prompt, greedy))
    assert first.version == 0 and len(first.ids) == len(first.logprobs) == 8
    weights = {k: v.clone() for k, v in HFEngine(tiny).model.state_dict().items()}
    weights["model.norm.weight"] = -weights["model.norm.weight"]  # a different policy
    assert ray.get(actor.update_weights.remote(1, ray.put(weights))) == 1
    second = ray.get(actor.generate.remote(prompt, greedy))
    assert second.version == 1
    assert second.ids != first.ids or second.logprobs != pytest.approx(first.logprobs, abs=1e-3)
    ray.kill(actor)


@pytest.mark.ray
def test_tl_grpo_rollout_on_ray_actors_and_the_pool(ray_cluster, tiny):
    import ray
    from transformers import AutoTokenizer

    from simworkers.catalog import load_task
    from simworkers.pool import SimPool
    from simworkers.query import near_reference_query
    from system.agent.conversation import ChatFormat
    from system.config import AlgorithmConfig
    from system.rl.buffer import Buffer
    from system.rl.plans import Rollout

    task = load_task("ota5t_generic")
    actor = ray.remote(num_cpus=0.5, max_concurrency=16)(RolloutActor).remote(tiny)
    fmt = ChatFormat(AutoTokenizer.from_pretrained(tiny))
    algo = AlgorithmConfig(name="tl_grpo", group_size=3, budget=2)

    async def run():
        pool = SimPool(1)
        try:
            rollout = Rollout(RolloutFleet([actor]), fmt, pool.submit, algo, Sampling(max_new_tokens=16))
            groups = await asyncio.gather(*(rollout.run(task, near_reference_query(task, s)) for s in (0, 1)))
            return [g for gs in groups for g in gs], pool.stats()
        finally:
            pool.shutdown()

    groups, stats = asyncio.run(run())
    # a random tiny model rarely writes a valid call: then no simulation runs, but each query still
    # has its backbone turns, and no simulation is ever spent beyond T x G per query
    assert sum(stats.completed.values()) <= 2 * (1 + 2 * 3)
    assert all(len(g.samples) == 3 for g in groups) and 2 <= len(groups) <= 6
    buffer = Buffer(flat_groups="keep")
    for g in groups:
        buffer.add(g)
    batch = buffer.take(len(buffer))
    assert batch.num_rows == len(groups)  # a turn group's history goes once, with its 3 branches
    assert [len(b) - 1 for b in batch.column("bounds").to_pylist()] == [3] * len(groups)
    assert {v for row in batch.column("policy_version").to_pylist() for v in row} == {0}
    assert all(any(m) for m in batch.column("loss_mask").to_pylist())
    assert torch.isfinite(
        torch.tensor([x for row in batch.column("old_logprobs").to_pylist() for x in row if x is not None])
    ).all()
    ray.kill(actor)


@pytest.mark.ray
def test_bench_rollout_reports_its_ratios(ray_cluster):
    from simworkers.catalog import load_task
    from system.bench.rollout import run_rollout_bench

    report = run_rollout_bench(None, load_task("ota5t_generic"), queries=2, group=2, budget=1, max_new_tokens=8)
    assert report["simulations"]["tl_grpo"] == report["simulations"]["traj_grpo"] == 2 * (1 + 1 * 2)
    assert report["generation_requests"] == 2 * 2  # T x G per query (replies replaced: every turn a call)
    for key in ("overlap", "agent_overhead", "tl_over_traj_time"):
        assert report[key] > 0
    assert report["overlap"] == pytest.approx(
        (report["generation_alone_s"] + report["simulation_alone_s"]) / report["rollout_s"]
    )


def test_bench_decode_gives_the_same_ids_with_either_cache(tiny):
    from system.bench.decode import run_decode_bench

    report = run_decode_bench(tiny, groups=2, rows_per_group=3, history=40, new_tokens=6, repeat=1)
    assert report["same_ids"] and report["setting"]["rows"] == 6
    assert report["static_speedup"] == pytest.approx(report["dynamic_s"] / report["static_s"])


def test_the_engine_dtype_is_chosen_by_name_and_a_wrong_one_is_refused(tiny):
    from actors.rollout import make_engine

    assert next(make_engine("hf", tiny).model.parameters()).dtype == torch.float32  # auto
    assert next(make_engine("hf", tiny, dtype="bfloat16").model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"float16.*auto, float32, bfloat16"):
        make_engine("hf", tiny, dtype="float16")
