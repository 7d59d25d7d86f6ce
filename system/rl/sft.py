"""`tlgrpo sft`: the format warm-up, a short supervised stage before reinforcement learning.

Synthetic episodes follow the protocol exactly: the real first message, replies that reason in
<Analyze>, call `simulate` with a design drawn uniformly inside the ranges (so the model learns
the format and nothing about good designs), the real simulation results as tool messages, and
<Design End> once the budget is spent. The learner trains on the reply tokens only
(cross-entropy); the result is a Hugging Face folder that every method starts from.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from simworkers.query import EVAL_SEED_BASE, near_reference_query, random_design
from simworkers.result import SimResult
from simworkers.task import Task
from simworkers.units import format_si
from system.agent.conversation import ChatFormat, Speaker, token_opener
from system.agent.dialogue import run_turns
from system.agent.episode import Simulate
from system.agent.protocol import first_message, tool_schema
from system.agent.turns import AgentState
from system.config import ConfigError, TrainConfig
from system.rl.buffer import Group, Sample, Segment
from system.rl.checkpoints import TrainerState, checkpoints_for
from system.rl.runfolder import RunFolder
from system.runtime import init_ray
from wire.sampling import Generation
from wire.storage import local_copy

# Neutral reasoning: the words of the format, no advice about which way a design should move.
ANALYSES = (
    "Try another design inside the ranges.",
    "Simulate a new point and compare the metrics with the specs.",
    "Explore a different set of parameter values.",
    "Check how the metrics respond to a new design.",
)


def call_text(task: Task, design: dict[str, float], rng: random.Random, names: list[str] | None = None) -> str:
    """Values in the SI-prefix form the prompt shows ranges in ("24.7u"): a small model copies
    that notation far more readily than it converts to exponents, and it takes fewer tokens.
    `names` (default: every parameter) are the ones the call sets; the others keep their values."""
    args = {p.name: format_si(design[p.name], "", 3) for p in task.params if names is None or p.name in names}
    return (
        f"<Analyze>{rng.choice(ANALYSES)}</Analyze>\n<tool_call>"
        + json.dumps({"name": "simulate", "arguments": args})
        + "</tool_call>"
    )


END_TEXT = "<Analyze>The budget is spent; the best design so far stands.</Analyze>\n<Design End>"


def scripted_speaker(task: Task, fmt: ChatFormat, seed: int, changes: int = 0) -> Speaker:
    """Replies that call `simulate` with a random design while simulations are left, then end;
    each reply is its text's token ids and the stop token. With `changes` > 0 a call sets 1 to
    `changes` parameters, drawn at random, to random values and keeps the rest (the protocol's
    omitted parameters): a short call that stays inside the ranges if those few values do."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    names = [p.name for p in task.params]

    def call() -> str:
        design = random_design(task, np_rng)
        if changes <= 0:
            return call_text(task, design, rng)
        return call_text(task, design, rng, rng.sample(names, rng.randint(1, min(changes, len(names)))))

    async def speak(ids: list[int], state: AgentState) -> Generation:
        text = call() if state.left > 0 else END_TEXT
        return Generation([*fmt.tokenizer.encode(text, add_special_tokens=False), fmt.stop_id], [], True)

    return speak


async def synthetic_episode(
    task: Task, seed: int, budget: int, fmt: ChatFormat, simulate: Simulate, changes: int = 0, source=None
) -> Sample:
    """One whole conversation as token ids; a segment per reply (its tokens, stop token included).
    The query is the training query of `seed` from `source` (a QuerySource: the run's rule), by
    default a near-reference one."""
    if source is None:  # its witness simulated on a backend of this process, not through `simulate`
        query = near_reference_query(task, seed)
    else:
        query = (await source.get(task, "train", 1, seed))[0]
    state = AgentState.opening(query, await simulate(task, query.initial), budget)
    opener = token_opener(scripted_speaker(task, fmt, seed, changes), fmt)
    dialogue = await run_turns(opener, task, query, state, budget, simulate)
    segments = [Segment(s.reply.span.start, s.reply.span.end, 1.0, [], s.turn) for s in dialogue.steps]
    return Sample(dialogue.conversation.ids, segments, task.name, seed, dialogue.state.best, True, 0, 0)


async def synthetic_batch(
    tasks: list[Task], first_seed: int, n: int, budgets: list[int], fmt, simulate, changes: int = 0, source=None
) -> list[Sample]:
    """`n` episodes, cycling through the tasks and (independently) through the budgets, so that
    one warm-up serves training at one budget and evaluation at another."""
    jobs = [
        synthetic_episode(
            tasks[i % len(tasks)],
            (first_seed + i) % EVAL_SEED_BASE,
            budgets[(i // len(tasks)) % len(budgets)],
            fmt,
            simulate,
            changes,
            source,
        )
        for i in range(n)
    ]
    return list(await asyncio.gather(*jobs))


def sft_arrow(samples: list[Sample]):
    """The learner's batch schema with advantage 1 on every reply token."""
    from system.rl.buffer import Buffer

    # independent episodes share only the template's first tokens: one row each, so that a batch
    # still splits across micro-batches and ranks
    buffer = Buffer(flat_groups="keep", share_prefixes=False)
    buffer.add(Group(0, samples, "sft", per_turn=False))
    batch = buffer.take(len(buffer))
    import pyarrow as pa

    ones = [[1.0 if m else 0.0 for m in row] for row in batch.column("loss_mask").to_pylist()]
    index = batch.schema.get_field_index("advantages")
    return batch.set_column(index, batch.schema.field(index), pa.array(ones, pa.list_(pa.float32())))


def reply_standing(text: str, task: Task, initial: dict[str, float]) -> str:
    """What the tool makes of one reply to the first message: "unparsed" (not in the format: no
    call and no end, no <Analyze> block, an unknown parameter), "refused" (a call in the format
    with a value outside its range, merged over the initial design as the tool merges it), or
    "accepted"."""
    from simworkers.validate import InvalidParams, validate_params
    from system.agent.protocol import merged_design, parse_reply

    parsed = parse_reply(text, task)
    if not parsed.format_ok:
        return "unparsed"
    if parsed.action == "call":
        try:
            validate_params(task, merged_design(initial, parsed.arguments))
        except InvalidParams:
            return "refused"
    return "accepted"


def first_replies(model_path: str, tasks: list[Task], n: int, budget: int, max_new_tokens: int) -> dict[str, float]:
    """First replies sampled at temperature 1 from `n` evaluation queries: the share that parse
    as a call or an end (`format_ok_rate`), and the share the tool would take as they are
    (`accepted_rate`: an end, or a call whose design, merged over the initial one, has every value
    inside its range; reply_standing). A reply can parse and still be refused. Seeded, so one
    model gives the same rates every time (32 unseeded samples of one warm-up read 0.72 and 0.84)."""
    from actors.hf_engine import HFEngine
    from wire.sampling import Sampling

    engine = HFEngine(model_path)
    fmt = ChatFormat(engine.tokenizer)
    parsed_ok = accepted = 0
    prompts, owners = [], []
    for i in range(n):
        task = tasks[i % len(tasks)]
        query = near_reference_query(task, EVAL_SEED_BASE + i)
        fake = SimResult("ok", {m.name: 1.0 for m in task.metrics})
        prompts.append(fmt.prompt_ids(first_message(task, query, budget, query.initial, fake), [tool_schema(task)]))
        owners.append((task, query))
    for start in range(0, n, 8):
        sampling = Sampling(max_new_tokens, 1.0, 0.95, seed=start)
        generations = engine.generate_batch(prompts[start : start + 8], sampling)
        for (task, query), generation in zip(owners[start : start + 8], generations):
            text = engine.tokenizer.decode(generation.ids, skip_special_tokens=True)
            standing = reply_standing(text, task, query.initial)
            parsed_ok += standing != "unparsed"
            accepted += standing == "accepted"
    return {"format_ok_rate": parsed_ok / max(1, n), "accepted_rate": accepted / max(1, n)}


def batch_plan(n: int, epochs: int, batch_episodes: int, seed: int) -> list[list[int]]:
    """The episodes of every step: each epoch a fresh shuffle (one random stream from `seed`),
    cut into batches of `batch_episodes`. A function of its arguments, so a resumed warm-up
    trains the batches its killed run had left, in the same order."""
    rng, order, plan = random.Random(seed), list(range(n)), []
    for _ in range(epochs):
        rng.shuffle(order)
        plan += [order[lo : lo + batch_episodes] for lo in range(0, n, batch_episodes)]
    return plan


SFT_ARGS = "sft_run.json"  # what the warm-up was asked for; a resumed warm-up must ask the same
SFT_EPISODES = "sft_episodes.jsonl"  # the synthetic episodes, written once, read again on resume


def save_samples(path: Path, samples: list[Sample]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(asdict(s)) + "\n" for s in samples))
    os.replace(tmp, path)


def load_samples(path: Path) -> list[Sample]:
    samples = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        row["segments"] = [Segment(**seg) for seg in row["segments"]]
        samples.append(Sample(**row))
    return samples


def check_settings(out: Path, asked: dict) -> None:
    """A resumed warm-up must be asked for what it began with (the episodes and the schedule):
    anything else would train a different model."""
    recorded = out / SFT_ARGS
    if not recorded.exists():
        return  # nothing was started here: a fresh warm-up
    before = json.loads(recorded.read_text())
    changed = [f"{key} {before.get(key)!r} -> {value!r}" for key, value in asked.items() if before.get(key) != value]
    if changed:
        raise ConfigError(f"--resume: the warm-up in {out} was started with other settings ({'; '.join(changed)})")


def run_sft(
    cfg: TrainConfig,
    episodes: int,
    epochs: int,
    batch_episodes: int,
    lr: float,
    budgets: list[int] | None = None,
    measure_format: bool = True,
    resume: bool = False,
    checkpoint_every: int = 20,
    changes: int = 0,
) -> dict:
    """Train the format warm-up; `budgets` (default: the config's) are the episodes' budgets.
    `measure_format` samples 32 first replies from the result: the share that parse, and the share
    the tool would take as they are (first_replies).
    `changes` > 0: each synthetic call changes at most that many parameters (scripted_speaker).

    The episodes are written to the run folder once made, and the learner is checkpointed every
    `checkpoint_every` steps: with `resume`, a killed warm-up reads its episodes back and goes on
    from its latest checkpoint, through the same batches in the same order, to the model it
    would have made unkilled."""
    from transformers import AutoTokenizer

    from learner.group import LearnerGroup
    from simworkers.catalog import resolve_tasks
    from simworkers.pool import SimPool
    from system.evaluation.datasets import QuerySource

    budgets = budgets or [cfg.algorithm.budget]
    folder = RunFolder(cfg.run.out_dir)  # a path, or a URI with a local mirror (system/rl/runfolder.py)
    out = folder.local
    checkpoints = checkpoints_for(folder.uri or out, cfg.run.keep_checkpoints)
    asked = {
        "model": cfg.model.path,
        "tasks": cfg.tasks.train,
        "seed": cfg.run.seed,
        "episodes": episodes,
        "epochs": epochs,
        "batch_episodes": batch_episodes,
        "lr": lr,
        "budgets": budgets,
        "changes": changes,
    }
    latest = checkpoints.resume_point(resume, folder.name)
    folder.prepare(pull=resume)
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        check_settings(out, asked)
    (out / SFT_ARGS).write_text(json.dumps(asked, indent=1))
    model_path = folder.model_path(cfg.model, cfg.run.seed)
    init_ray(cfg.learner.world_size * cfg.learner.cpus_per_rank + cfg.sim.max_workers)
    tasks = resolve_tasks(cfg.tasks.train)
    fmt = ChatFormat(AutoTokenizer.from_pretrained(local_copy(model_path)))
    started = time.perf_counter()
    saved = out / SFT_EPISODES
    if resume and saved.exists():
        samples = load_samples(saved)
    else:
        pool = SimPool(cfg.sim.max_workers, cfg.sim.backend, timeout_s=cfg.sim.timeout_s)
        try:
            first_seed = cfg.run.seed * 1_000_003
            t = cfg.tasks
            # the run's own queries (its rule), built from seeds: the warm-up needs no dataset
            source = QuerySource(pool.submit, root=t.data_dir, on_the_fly=True, rule=t.query_rule)
            samples = asyncio.run(
                synthetic_batch(tasks, first_seed, episodes, budgets, fmt, pool.submit, changes, source)
            )
        finally:
            pool.shutdown()
        save_samples(saved, samples)
        folder.push()
    data_s = time.perf_counter() - started
    learner = LearnerGroup(cfg.learner.model_copy(update={"lr": lr}), model_path)
    metrics_path = out / "sft_metrics.jsonl"
    try:
        state = TrainerState(step=0, version=0, seed=cfg.run.seed)
        if latest is not None:
            state = checkpoints.load_state(latest)
            learner.load(checkpoints.learner_dir(latest))
            print(f"resumed the warm-up from {latest} at step {state.step}")
        log = [json.loads(x) for x in metrics_path.read_text().splitlines()] if latest is not None else []
        log = [x for x in log if x["step"] < state.step]  # steps after the checkpoint are trained again
        metrics_path.write_text("".join(json.dumps(x) + "\n" for x in log))
        plan = batch_plan(len(samples), epochs, batch_episodes, cfg.run.seed)
        with metrics_path.open("a") as metrics_file:
            for step, indices in enumerate(plan):
                if step < state.step:
                    continue
                metrics = learner.sft_step(sft_arrow([samples[i] for i in indices]), step, len(plan))
                log.append({"step": step, **metrics})
                metrics_file.write(json.dumps(log[-1]) + "\n")
                metrics_file.flush()
                if step % 10 == 0 or step == len(plan) - 1:
                    loss, tokens = metrics["loss"], metrics["action_tokens"]
                    print(f"sft step {step + 1}/{len(plan)}  loss {loss:.4f}  tokens {tokens}")
                state = TrainerState(step + 1, step + 1, cfg.run.seed, [*state.trained, step])
                if state.step % checkpoint_every == 0 and state.step < len(plan):
                    checkpoints.save(state, learner.save)
                    folder.push()
        final = folder.target("final")
        learner.export(final)
    finally:
        learner.shutdown()
        folder.push()
    rates = {"format_ok_rate": None, "accepted_rate": None}
    if measure_format:
        rates = first_replies(local_copy(final), tasks, 32, max(budgets), cfg.rollout.sampling.max_new_tokens)
    return {
        "final_model": final,
        "episodes": len(samples),
        "steps": len(log),
        "first_loss": log[0]["loss"] if log else None,
        "last_loss": log[-1]["loss"] if log else None,
        **rates,
        "data_s": data_s,
        "wall_s": time.perf_counter() - started,
    }
