"""`tlgrpo train`: the training loop (docs/design.md, "The data path of one step") over Ray.

Each step: B training queries (a pure function of the run seed and the step, so the data
position is the step), rolled out by the configured plan on the rollout fleet and the simulation
pool; groups into the buffer; one Arrow batch to the learner group; new weights to every rollout
actor; metrics to W&B. With `algorithm.staleness: 1` the rollout of step k+1 runs while step k
trains. Checkpoints hold the learner (torch distributed checkpoint) and the trainer state; a
resumed run starts at the first batch the checkpoint has not trained.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable

from actors.runtime_env import actor_runtime_env
from simworkers.catalog import resolve_tasks
from simworkers.query import EVAL_SEED_BASE
from system.config import ConfigError, TrainConfig, dump, to_dict
from system.evaluation.datasets import QuerySource
from system.rl.buffer import Buffer, Group
from system.rl.checkpoints import TrainerState, checkpoints_for
from system.rl.metrics import best_so_far_metrics, rollout_metrics
from system.rl.runfolder import RunFolder
from system.runtime import init_ray
from wire.sampling import Sampling
from wire.storage import local_copy


def rollout_runtime_env(python: str | None, threads: int | None) -> dict | None:
    """The rollout actors' runtime_env; an interpreter that is not there is a config error."""
    try:
        return actor_runtime_env(python, threads)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def infrastructure_faults() -> tuple[type[BaseException], ...]:
    """What the run recovers from by itself: a process or node of the job lost. A data fault
    (a bad design, a failed simulation) never gets here: it is a result with a status."""
    from ray.exceptions import NodeDiedError, ObjectLostError, OwnerDiedError, RayActorError, WorkerCrashedError

    from learner.group import RankLost

    return (RankLost, RayActorError, WorkerCrashedError, NodeDiedError, ObjectLostError, OwnerDiedError)


def _teardown(*steps) -> None:
    """Run every step even if one fails (a component that died fails its own shutdown); then
    raise the first failure, unless the run is already unwinding from another."""
    first = None
    for step in steps:
        try:
            step()
        except Exception as exc:
            first = first or exc
    if first is not None and sys.exc_info()[0] is None:
        raise first


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        resume: bool = False,
        on_eval: Callable[[int, dict], bool] | None = None,
        baselines_first: bool = False,
    ):
        """`on_eval(step, summary)` is called after each held-out evaluation; True stops the run
        there (a learning test that passed). `baselines_first`: the baselines run with the first
        evaluation instead of the last (their scores do not change as the policy trains)."""
        self.cfg = cfg
        self.on_eval, self.baselines_first = on_eval, baselines_first
        self.folder = RunFolder(cfg.run.out_dir)  # a path, or a URI with a local mirror
        self.out = self.folder.local
        self.checkpoints = checkpoints_for(self.folder.uri or self.out, cfg.run.keep_checkpoints)
        self.resume_from = self.checkpoints.resume_point(resume, self.folder.name)
        self.recoveries: list[dict] = []  # each fault the run recovered from: when, what, from where
        self.train_tasks = resolve_tasks(cfg.tasks.train)  # read once, not every step

    # ------------------------------------------------------------------ set-up

    @property
    def sampling(self) -> Sampling:
        s = self.cfg.rollout.sampling
        return Sampling(s.max_new_tokens, s.temperature, s.top_p)

    def model_path(self) -> str:
        return self.folder.model_path(self.cfg.model, self.cfg.run.seed)

    def query_source(self, pool) -> QuerySource:
        """One per pool (a recovered run has a new pool), so a dataset is read once."""
        if getattr(self, "_source_pool", None) is not pool:
            t = self.cfg.tasks
            self._source = QuerySource(pool.submit, root=t.data_dir, on_the_fly=t.queries == "seeds", rule=t.query_rule)
            self._source_pool = pool
        return self._source

    async def queries(self, step: int, source: QuerySource) -> list:
        """Step `step`'s queries: the tasks in turn, each task's training queries in order from
        a position that the run seed sets (wrapping around a dataset: the next epoch)."""
        tasks = self.train_tasks
        b = self.cfg.algorithm.queries_per_step
        out = []
        for i in range(b):
            position = step * b + i
            task = tasks[position % len(tasks)]
            index = (self.cfg.run.seed * 1_000_003 + position // len(tasks)) % EVAL_SEED_BASE
            out.append((task, (await source.get(task, "train", 1, index))[0]))
        return out

    def run(self) -> dict:
        cfg = self.cfg
        self.folder.prepare(pull=self.resume_from is not None)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(dump(cfg))
        self.folder.push()
        model_path = self.model_path()
        rollout_cpus = cfg.rollout.actors * cfg.rollout.cpus_per_actor
        init_ray(cfg.learner.world_size * cfg.learner.cpus_per_rank + rollout_cpus + cfg.sim.max_workers)
        if cfg.warmup.wanted:
            model_path = self.warm_up()
        failures = 0
        while True:
            try:
                return asyncio.run(self._main(model_path))
            except infrastructure_faults() as exc:
                failures += 1
                if failures > cfg.run.max_failures:
                    raise
                # what was trained after the last checkpoint died with the learner: train it again
                self.resume_from = self.checkpoints.latest()
                where = self.checkpoints.label(self.resume_from) if self.resume_from else "the start"
                self.recoveries.append({"at": time.monotonic(), "fault": type(exc).__name__, "from": where})
                print(
                    f"infrastructure fault ({type(exc).__name__}: {str(exc)[:300]}); "
                    f"recovery {failures} of {cfg.run.max_failures}: rebuilding, continuing from {where}",
                    flush=True,
                )

    def warm_up(self) -> str:
        """The format warm-up's model: the one `warmup.start_from` names, or trained now unless an
        earlier attempt of this run left it."""
        from system.rl.sft import run_sft

        given = self.cfg.warmup.start_from
        if given:
            if not RunFolder(given).exists("config.json"):
                raise ConfigError(f"warmup.start_from: {given} holds no model (no config.json there)")
            return RunFolder(given).name
        folder = self.folder.target("warmup")
        if not self.folder.exists("warmup", "final", "config.json"):
            w = self.cfg.warmup
            cfg = self.cfg.model_copy(update={"run": self.cfg.run.model_copy(update={"out_dir": folder})})
            report = run_sft(cfg, w.episodes, w.epochs, w.batch_episodes, w.lr, measure_format=False, changes=w.changes)
            print(
                f"format warm-up: {report['episodes']} synthetic episodes, {report['steps']} steps, loss "
                f"{report['first_loss']:.3f} -> {report['last_loss']:.3f}, {report['wall_s']:.0f} s",
                flush=True,
            )
        return self.folder.target("warmup", "final")

    def _components(self, model_path: str):
        import ray
        from transformers import AutoTokenizer

        from actors.fleet import RolloutFleet
        from actors.rollout import RolloutActor
        from learner.group import LearnerGroup
        from simworkers.pool import SimPool
        from simworkers.sizing import PoolSizer
        from system.agent.conversation import ChatFormat
        from system.rl.weights import make_weight_sync

        cfg = self.cfg
        if cfg.sim.elastic:
            pool = SimPool(
                backend=cfg.sim.backend,
                timeout_s=cfg.sim.timeout_s,
                sizer=PoolSizer(cfg.sim.min_workers, cfg.sim.max_workers),
            )
        else:
            pool = SimPool(cfg.sim.max_workers, cfg.sim.backend, timeout_s=cfg.sim.timeout_s)
        threads = cfg.rollout.threads_per_actor or cfg.rollout.cpus_per_actor
        remote = ray.remote(
            num_cpus=cfg.rollout.cpus_per_actor,
            num_gpus=cfg.rollout.gpus_per_actor,
            max_concurrency=512,
            max_restarts=-1,
            max_task_retries=-1,
            runtime_env=rollout_runtime_env(cfg.rollout.python, threads if cfg.rollout.engine == "vllm" else None),
        )(RolloutActor)
        handles = [
            remote.remote(
                model_path,
                cfg.rollout.batch_window_s,
                cfg.rollout.max_batch,
                threads,
                cfg.rollout.engine,
                cfg.rollout.kv_cache_mb,
                cfg.rollout.dtype,
            )
            for _ in range(cfg.rollout.actors)
        ]
        learner = LearnerGroup(cfg.learner, model_path, with_reference=cfg.learner.loss.kl_coef > 0)
        sync = make_weight_sync(learner, cfg.rollout, cfg.learner)
        fleet = RolloutFleet(handles, cfg.algorithm.staleness, fetch_weights=sync.reference)
        fmt = ChatFormat(AutoTokenizer.from_pretrained(local_copy(model_path)))
        return pool, fleet, learner, sync, fmt

    async def _main(self, model_path: str) -> dict:
        from system.rl.plans import Rollout
        from system.rl.tracking import Tracker

        cfg = self.cfg
        pool, fleet, learner, sync, fmt = self._components(model_path)
        tracker = None
        try:
            state = TrainerState(step=0, version=0, seed=cfg.run.seed)
            if self.resume_from is not None:
                state = self.checkpoints.load_state(self.resume_from)
                learner.load(self.checkpoints.learner_dir(self.resume_from))
                await sync.push(fleet, state.version)
                print(f"resumed from {self.resume_from} at step {state.step} (weights version {state.version})")
            tracker = Tracker(cfg.wandb, self.out, cfg.run.name, to_dict(cfg), state.step)
            urgent = functools.partial(pool.submit, urgent=True)
            plan = Rollout(fleet, fmt, pool.submit, cfg.algorithm, self.sampling, cfg.rollout.max_prompt_tokens, urgent)
            last_eval: dict = {}
            steps = cfg.run.steps
            if cfg.run.eval_at_start and state.step == 0:
                summary = await self._evaluate(
                    fleet, fmt, pool, tracker, 0, baselines=self.baselines_first, base_model=cfg.run.eval_base_model
                )
                if self.on_eval:
                    self.on_eval(0, summary)
            pending = asyncio.create_task(self._rollout(plan, fleet, pool, state.step)) if state.step < steps else None
            while state.step < steps:
                step = state.step
                started = time.perf_counter()
                groups, rollout_info = await pending
                pending, awaited = None, time.perf_counter()
                if cfg.algorithm.staleness >= 1 and step + 1 < steps:
                    pending = asyncio.create_task(self._rollout(plan, fleet, pool, step + 1))
                metrics = {**rollout_info, **rollout_metrics(groups, state.version)}
                buffer = Buffer(cfg.algorithm.flat_groups, cfg.algorithm.share_prefixes)
                for group in groups:
                    fresh = [x for x in group.samples if x.policy_version >= state.version - cfg.algorithm.staleness]
                    if len(fresh) == len(group.samples):
                        buffer.add(group)
                    else:
                        metrics["dropped_stale_groups"] = metrics.get("dropped_stale_groups", 0) + 1
                metrics["dropped_flat_groups"] = buffer.dropped_groups
                if len(buffer):
                    batch = buffer.take(len(buffer))
                    t = time.perf_counter()
                    learned = await asyncio.to_thread(learner.train_step, batch, step, steps, self.sampling.temperature)
                    metrics.update(learned)
                    metrics["time/learn_s"] = time.perf_counter() - t
                    t = time.perf_counter()
                    state.version += 1
                    metrics.update(await sync.push(fleet, state.version))
                    metrics["time/weight_sync_s"] = time.perf_counter() - t
                    state.trained.append(step)
                else:
                    metrics["skipped"] = 1
                    state.skipped.append(step)
                state.step += 1
                if pending is None and state.step < steps:
                    pending = asyncio.create_task(self._rollout(plan, fleet, pool, state.step))
                # on policy, a step is its rollout and what followed it: the rollout may have run beside
                # the held-out evaluation before the step began, which the time since `started` leaves out
                now = time.perf_counter()
                on_policy = cfg.algorithm.staleness == 0
                metrics["time/step_s"] = rollout_info["time/rollout_s"] + now - awaited if on_policy else now - started
                metrics["version"] = state.version
                tracker.log_step(step, steps, metrics)
                last = state.step == steps
                if last or state.step % cfg.run.checkpoint_every == 0:
                    self.checkpoints.save(state, learner.save)
                if last or (cfg.run.eval_every and state.step % cfg.run.eval_every == 0):
                    baselines = last and not (self.baselines_first and cfg.run.eval_at_start)
                    last_eval = await self._evaluate(fleet, fmt, pool, tracker, state.step, baselines=baselines)
                    if self.on_eval and self.on_eval(state.step, last_eval) and not last:
                        self.folder.push()
                        break  # a learning test that passed (or ran out of time): the final model is exported
                self.folder.push()  # the step's metrics and evaluation on the store (a URI run)
            if pending is not None:
                pending.cancel()
            final = self.folder.target("final")
            learner.export(final)
            return {"out_dir": self.folder.name, "final_model": final, "state": state, "eval": last_eval}
        finally:
            _teardown(
                *([tracker.finish] if tracker else []), learner.shutdown, pool.shutdown, fleet.kill, self.folder.push
            )

    async def _rollout(self, plan, fleet, pool, step: int) -> tuple[list[Group], dict]:
        started = time.perf_counter()
        await fleet.reseed(self.cfg.run.seed * 7919 + step)
        tokens_before = fleet.generated_tokens
        sims_before = dict(pool.stats().completed)
        cut_before = plan.cut_histories
        batching_before = await fleet.batching()
        chosen = await self.queries(step, self.query_source(pool))
        results = await asyncio.gather(*(plan.run(task, query) for task, query in chosen))
        elapsed = time.perf_counter() - started
        batching = {k: v - batching_before[k] for k, v in (await fleet.batching()).items()}
        after = pool.stats().completed
        sims = {k: v - sims_before.get(k, 0) for k, v in after.items()}
        info = {
            "time/rollout_s": elapsed,
            "tokens_per_s": (fleet.generated_tokens - tokens_before) / max(elapsed, 1e-9),
            # requests the engines ran together: a turn's B x G requests at best, 1 when nothing batches
            "rollout/generate_batches": batching["batches"],
            "rollout/requests_per_batch": batching["requests"] / max(batching["batches"], 1),
            "simulations": sum(sims.values()),
            "simulations_per_s": sum(sims.values()) / max(elapsed, 1e-9),
            **{f"sim/{k}": v for k, v in sims.items()},
            "cut_histories": plan.cut_histories - cut_before,
            **best_so_far_metrics(plan.take_best_curves(), self.cfg.algorithm.budget),
        }
        return [g for groups in results for g in groups], info

    async def _evaluate(self, fleet, fmt, pool, tracker, step: int, baselines: bool, base_model: bool = False) -> dict:
        from system.agent.conversation import engine_speaker, token_opener
        from system.agent.policies import LLMPolicy
        from system.agent.registry import make_policy
        from system.evaluation.evaluate import count_jobs, markdown_table, run_evaluation, summarise, write_outputs
        from system.evaluation.progress import WorkProgress

        cfg = self.cfg

        opener = token_opener(engine_speaker(fleet, self.sampling), fmt)
        policies = [LLMPolicy(f"{cfg.algorithm.name}@{step}", opener)]
        if baselines:
            policies += [make_policy(name) for name in cfg.run.eval_baselines]
        if base_model and cfg.warmup.wanted and cfg.model.path:  # the model as installed, before the warm-up
            from system.models.install import resolve_model

            s = self.sampling
            policies.append(
                make_policy(
                    f"hf:{cfg.model.path}",
                    resolve=resolve_model,
                    max_new_tokens=s.max_new_tokens,
                    temperature=s.temperature,
                    top_p=s.top_p,
                )
            )
        tasks = resolve_tasks(cfg.tasks.eval)
        total = count_jobs(tasks, policies, cfg.run.eval_protocols, cfg.run.eval_queries)
        started = time.perf_counter()
        with WorkProgress(total, label=f"evaluation at step {step}: episodes") as progress:
            episodes = await run_evaluation(
                tasks,
                policies,
                cfg.run.eval_protocols,
                cfg.run.eval_queries,
                cfg.algorithm.budget,
                pool.submit,
                source=self.query_source(pool),
                concurrency=16,
                on_done=lambda _: progress.advance(),
            )
        summary = summarise(episodes, tasks)
        out = self.out / "eval" / f"step_{step:06d}"
        settings = {
            "queries": cfg.run.eval_queries,
            "budget": cfg.algorithm.budget,
            "step": step,
            "wall_s": round(time.perf_counter() - started, 1),
        }
        write_outputs(out, episodes, summary, settings)
        tracker.log_eval(step, summary, markdown_table(summary), out / "turn_curves.png")
        return summary
