"""The FSDP2 learner group on real Ray with gloo: 2 ranks match 1, checkpoints round-trip, and the
learner's log-probs of sampled tokens match the engine's."""

import random

import pytest
import torch

from learner.config import LearnerConfig
from system.rl.buffer import Buffer, Group, Sample, Segment

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from system.models.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def _batch(seed: int = 0):
    rng = random.Random(seed)
    buffer = Buffer()
    for g in range(3):
        samples = []
        for _ in range(4):
            n, a = rng.randrange(30, 90), rng.randrange(5, 25)
            ids = [rng.randrange(3, 400) for _ in range(n + a)]
            samples.append(Sample(ids, [Segment(n, n + a, rng.random(), [-1.0] * a, 1)], "t", 1, 0.0, True, 0, 1))
        buffer.add(Group(g, samples, "tl_grpo"))
    return buffer.take(len(buffer))


def _weights_after_steps(ray, tiny, world: int, steps: int = 2) -> tuple[dict, list[dict]]:
    from learner.group import LearnerGroup

    group = LearnerGroup(LearnerConfig(world_size=world, lr=1e-3, micro_batch_tokens=200), tiny)
    try:
        metrics = [group.train_step(_batch(s), s, steps) for s in range(steps)]
        return ray.get(group.publish_weights()), metrics
    finally:
        group.shutdown()


def test_two_ranks_make_the_same_update_as_one(ray_cluster, tiny):
    one, m1 = _weights_after_steps(ray_cluster, tiny, 1)
    two, m2 = _weights_after_steps(ray_cluster, tiny, 2)
    from transformers import AutoModelForCausalLM

    start = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    moved = max((one[k] - start[k]).abs().max().item() for k in one)
    assert moved > 1e-4  # the update did something
    for key in one:
        assert torch.allclose(one[key], two[key], atol=2e-5), key
    for a, b in zip(m1, m2):
        assert a["action_tokens"] == b["action_tokens"] and a["real_tokens"] == b["real_tokens"]
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
        assert a["entropy"] == pytest.approx(b["entropy"], rel=1e-5)
    assert m2[0]["computed_tokens"] >= m2[0]["real_tokens"]


def test_training_only_the_top_layer_moves_and_publishes_only_it(ray_cluster, tiny):
    from transformers import AutoModelForCausalLM

    from actors.hf_engine import HFEngine
    from learner.group import LearnerGroup

    group = LearnerGroup(LearnerConfig(world_size=1, lr=1e-3, micro_batch_tokens=300, train_layers=1), tiny)
    try:
        group.train_step(_batch(0), 0, 1)
        published = ray_cluster.get(group.publish_weights())
    finally:
        group.shutdown()
    start = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    assert published and all(k.startswith(("model.layers.1.", "model.norm.")) for k in published)
    assert max((published[k] - start[k]).abs().max().item() for k in published) > 1e-4
    engine = HFEngine(tiny)
    engine.update_weights(1, published)  # a partial state dict: the frozen weights stay as loaded
    served = engine.model.state_dict()
    for key in start:
        assert torch.equal(served[key], published.get(key, start[key])), key
    with pytest.raises(KeyError, match="does not have"):
        engine.update_weights(2, {"model.layers.9.mlp.up_proj.weight": torch.zeros(1)})


def test_checkpoint_round_trip(ray_cluster, tiny, tmp_path):
    from learner.group import LearnerGroup

    group = LearnerGroup(LearnerConfig(world_size=2, lr=1e-3, micro_batch_tokens=300), tiny)
    try:
        group.train_step(_batch(0), 0, 3)
        group.save(str(tmp_path / "ck"))
        saved = ray_cluster.get(group.publish_weights())
        group.train_step(_batch(1), 1, 3)
        changed = ray_cluster.get(group.publish_weights())
        assert any(not torch.equal(saved[k], changed[k]) for k in saved)
        group.load(str(tmp_path / "ck"))
        restored = ray_cluster.get(group.publish_weights())
        for key in saved:
            assert torch.equal(saved[key], restored[key]), key
        # the optimiser state came back too: the same next step gives the same weights
        group.train_step(_batch(1), 1, 3)
        again = ray_cluster.get(group.publish_weights())
        for key in saved:
            assert torch.allclose(changed[key], again[key], atol=1e-6), key
    finally:
        group.shutdown()


def test_learner_logprobs_match_the_engine(ray_cluster, tiny):
    from actors.hf_engine import HFEngine
    from learner.group import LearnerGroup
    from wire.sampling import Sampling

    engine = HFEngine(tiny)
    torch.manual_seed(0)
    prompt = list(range(5, 45))
    generation = engine.generate(prompt, Sampling(max_new_tokens=20, temperature=1.0, top_p=1.0))
    ids = prompt + generation.ids
    sample = Sample(ids, [Segment(len(prompt), len(ids), 1.0, generation.logprobs, 1)], "t", 0, 0.0, True, 0, 1)
    buffer = Buffer(flat_groups="keep")
    buffer.add(Group(0, [sample], "tl_grpo"))
    group = LearnerGroup(LearnerConfig(world_size=1), tiny)
    try:
        learner = group.logprobs(buffer.take(1))[0][len(prompt) :]
    finally:
        group.shutdown()
    assert learner == pytest.approx(generation.logprobs, abs=1e-4)


def test_bench_learner_reports_its_ratios(ray_cluster):
    from system.bench.learner import run_learner_bench

    report = run_learner_bench(None, world_size=2, samples=4, steps=1, micro_batch_tokens=2048)
    assert report["learner_efficiency"] > 0 and 0 < report["packing_efficiency"] <= 1
    assert report["weights_gb"] > 0 and report["setting"]["world_size"] == 2


def test_collective_weight_sync_matches_the_object_store(ray_cluster, tiny):
    """Two FSDP ranks broadcast in small buckets (gloo) into two HF rollout actors; their greedy
    replies and log-probs equal those of an actor updated through the object store, and differ
    from the base model's. An actor restarted by Ray makes the next push rebuild the group."""
    import asyncio

    from actors.fleet import RolloutFleet
    from actors.rollout import RolloutActor
    from learner.group import LearnerGroup
    from system.rl.weights import CollectiveSync
    from wire.sampling import Sampling

    remote = ray_cluster.remote(num_cpus=0, max_concurrency=8, max_restarts=1, max_task_retries=-1)(RolloutActor)
    actors = [remote.remote(tiny, 0.001, 4, 1) for _ in range(3)]
    group = LearnerGroup(LearnerConfig(world_size=2, lr=1e-3, micro_batch_tokens=300), tiny)
    prompt, greedy = list(range(5, 40)), Sampling(max_new_tokens=12, temperature=0.0)
    try:
        base = ray_cluster.get(actors[0].generate.remote(prompt, greedy))
        group.train_step(_batch(0), 0, 2)
        sync = CollectiveSync(group, "gloo", bucket_bytes=64 * 1024)
        fleet = RolloutFleet(actors[:2], fetch_weights=sync.reference)
        assert len(sync.plan) > 3
        info = asyncio.run(sync.push(fleet, 1))
        assert info["weight_sync/bytes"] > 0 and info["weight_sync/group_builds"] == 1
        ray_cluster.get(actors[2].update_weights.remote(1, group.publish_weights()))
        answers = ray_cluster.get([a.generate.remote(prompt, greedy) for a in actors])
        assert {a.version for a in answers} == {1}
        assert answers[0].ids == answers[1].ids == answers[2].ids
        assert answers[0].logprobs == pytest.approx(answers[2].logprobs, abs=1e-6)
        assert answers[0].logprobs != pytest.approx(base.logprobs, abs=1e-4)

        ray_cluster.kill(actors[1], no_restart=False)  # Ray restarts it with the base weights
        group.train_step(_batch(1), 1, 2)
        info = asyncio.run(sync.push(fleet, 2))
        assert info["weight_sync/group_builds"] == 2
        ray_cluster.get(actors[2].update_weights.remote(2, group.publish_weights()))
        answers = ray_cluster.get([a.generate.remote(prompt, greedy) for a in actors])
        assert {a.version for a in answers} == {2}
        assert answers[0].logprobs == pytest.approx(answers[2].logprobs, abs=1e-6)
        assert answers[1].logprobs == pytest.approx(answers[2].logprobs, abs=1e-6)
    finally:
        group.shutdown()
        for a in actors:
            ray_cluster.kill(a)
