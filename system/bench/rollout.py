"""`tlgrpo bench rollout`: is generation overlapped with simulation, and what does the agent loop
cost on top of them?

A TL-GRPO rollout of B queries runs on a Ray rollout actor (HF engine) and the simulation pool.
Then, in the same run, (a) the same generation requests go straight to the engine with no agent
loop, and (b) the same simulations go straight through the pool. Headlines:
`overlap` = (generation alone + simulation alone) / rollout, `agent_overhead` = rollout / max of
the two. A model built from a config writes no valid tool calls, so by default the engine's
generation runs in full (real tokens, real time) and its reply is then replaced by a valid random
call, as a trained policy would write: every turn simulates. `--model PATH` with `--no-replace`
measures a real policy as it is.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from dataclasses import dataclass
from functools import partial

from simworkers.query import near_reference_query, random_design
from simworkers.task import Task
from system.runtime import init_ray
from wire.sampling import Generation, Sampling


def _pin(actor, cores: list[int]):
    """Run every thread of an actor's process (and the processes it starts later, such as
    ngspice) on `cores` only."""

    def pin(_self, cores=tuple(cores)):
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), cores)
            except OSError:  # a thread that has ended
                pass
        return sorted(os.sched_getaffinity(0))

    return actor.__ray_call__.remote(pin)


@dataclass
class _Recorder:
    """Wraps a generator: records every prompt, optionally swaps replies for valid calls."""

    inner: object
    task: Task
    tokenizer: object
    stop_id: int
    replace: bool
    seed: int = 0

    def __post_init__(self):
        self.prompts: list[tuple[list[int], Sampling]] = []
        self.answered: list[float] = []  # perf_counter when each generation came back
        self.rng = random.Random(self.seed)
        self.version = 0

    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        self.prompts.append((list(prompt_ids), sampling))
        generation = await self.inner.generate(prompt_ids, sampling)
        self.answered.append(time.perf_counter())
        if not self.replace:
            return generation
        import numpy as np

        design = random_design(self.task, np.random.default_rng(self.rng.randrange(2**31)))
        text = (
            "<Analyze>next</Analyze><tool_call>"
            + json.dumps({"name": "simulate", "arguments": design})
            + ("</tool_call>")
        )
        ids = [*self.tokenizer.encode(text, add_special_tokens=False), self.stop_id]
        return Generation(ids, [0.0] * len(ids), True, generation.version)


async def _rollout_bench(
    model: str, task: Task, queries: int, group: int, budget: int, max_new_tokens: int, replace: bool, engine: str
) -> dict:
    import ray
    from transformers import AutoTokenizer

    from actors.fleet import RolloutFleet
    from actors.rollout import RolloutActor
    from simworkers.pool import SimPool
    from system.agent.conversation import ChatFormat
    from system.config import AlgorithmConfig
    from system.rl.plans import Rollout

    fmt = ChatFormat(AutoTokenizer.from_pretrained(model))
    # batches of at most 8 on one CPU thread: larger padded batches only slow a CPU engine down
    actor = ray.remote(num_cpus=1, max_concurrency=256)(RolloutActor).remote(model, 0.005, 8, 1, engine)
    pool = SimPool(1)
    # generation and simulation on disjoint cores (where there are two), so that the figures
    # measure the agent loop rather than two jobs fighting for the same core
    cores = sorted(os.sched_getaffinity(0))
    disjoint = len(cores) >= 2
    if disjoint:
        await _pin(actor, cores[:1])
        await asyncio.gather(*(_pin(handle, cores[1:2]) for handle in pool.handles.values()))
    sampling = Sampling(max_new_tokens=max_new_tokens, temperature=1.0, top_p=0.95)
    qs = [near_reference_query(task, i) for i in range(queries)]
    try:
        await pool.warm_up(task)
        await actor.generate.remote(fmt.prompt_ids("warm up", []), Sampling(max_new_tokens=4))
        timings, sims = {}, {}
        recorder = None
        for algorithm in ("tl_grpo", "traj_grpo"):
            rec = _Recorder(RolloutFleet([actor]), task, fmt.tokenizer, fmt.stop_id, replace)
            calls: list[tuple[Task, dict]] = []
            asked: list[float] = []  # perf_counter when each simulation was asked for

            async def simulate(t, params, urgent=False, calls=calls, asked=asked):
                calls.append((t, params))
                asked.append(time.perf_counter())
                return await pool.submit(t, params, urgent)

            algo = AlgorithmConfig(name=algorithm, group_size=group, budget=budget)
            rollout = Rollout(rec, fmt, simulate, algo, sampling, simulate_urgent=partial(simulate, urgent=True))
            start = time.perf_counter()
            await asyncio.gather(*(rollout.run(task, q) for q in qs))
            timings[algorithm], sims[algorithm] = time.perf_counter() - start, len(calls)
            if algorithm == "tl_grpo":
                recorder, tl_calls = rec, calls
                last_generation = max(rec.answered)
                tail_sims = sum(t >= last_generation for t in asked)
                first_answer = min(rec.answered) - start  # no proposed design is simulated before it
                proposed_sims = sum(t >= min(rec.answered) for t in asked)  # the initial designs' come before
        start = time.perf_counter()
        await asyncio.gather(*(actor.generate.remote(ids, s) for ids, s in recorder.prompts))
        gen_alone = time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.gather(*(pool.submit(t, p) for t, p in tl_calls))
        sim_alone = time.perf_counter() - start
        batching = await actor.batching.remote()
    finally:
        pool.shutdown()
        ray.kill(actor)
    rollout_s = timings["tl_grpo"]
    # No schedule beats either bound: generation at its own speed, then the simulations that wait
    # on the last generation; or the first generation, then every proposed design's simulation.
    per_sim = sim_alone / max(1, len(tl_calls))
    critical_path = max(gen_alone + tail_sims * per_sim, first_answer + proposed_sims * per_sim)
    return {
        "setting": {
            "engine": engine,
            "model": model,
            "task": task.name,
            "B": queries,
            "G": group,
            "T": budget,
            "max_new_tokens": max_new_tokens,
            "replies_replaced_by_valid_calls": replace,
            "cores": os.cpu_count(),
            "rollout_actor_threads": 1,
            "sim_actors": 1,
            "disjoint_cores": disjoint,
        },
        "rollout_s": rollout_s,
        "generation_alone_s": gen_alone,
        "simulation_alone_s": sim_alone,
        "overlap": (gen_alone + sim_alone) / rollout_s,
        "agent_overhead": rollout_s / max(gen_alone, sim_alone),
        "critical_path_s": critical_path,
        "simulations_after_last_generation": tail_sims,
        "agent_overhead_vs_critical_path": rollout_s / critical_path,
        "generation_requests": len(recorder.prompts),
        "simulations": sims,
        "traj_grpo_s": timings["traj_grpo"],
        "tl_over_traj_time": rollout_s / timings["traj_grpo"],
        "engine_batches": batching,
    }


def run_rollout_bench(
    model: str | None,
    task: Task,
    queries: int,
    group: int,
    budget: int,
    max_new_tokens: int,
    replace: bool = True,
    engine: str = "hf",
) -> dict:
    """`engine`: hf, or vllm (run it with the vLLM environment's Python, .venv-vllm)."""
    import ray

    started = not ray.is_initialized()
    if started:
        init_ray(object_store_mb=256)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if model is None:
                from system.models.tiny import build_tiny_model

                model = str(build_tiny_model(tmp))
            report = asyncio.run(_rollout_bench(model, task, queries, group, budget, max_new_tokens, replace, engine))
            if report["setting"]["model"].startswith(tmp):
                report["setting"]["model"] = "tiny Qwen3-architecture model built from a config (hidden 128, 2 layers)"
            return report
    finally:
        if started:
            ray.shutdown()
