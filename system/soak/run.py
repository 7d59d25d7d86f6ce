"""The soak's driver: a local Ray cluster of a head and a second node that comes and goes, a real
training (the tiny model by default), a simulation load on the trap circuit through its own
elastic pool, and the injector; then the account (system/soak/account.py).

Faults are real: processes are killed with SIGKILL, ngspice hangs in a transient or is killed by
its own control script, the second node's raylet and workers are torn down. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from system.rl.train import Trainer
from system.soak import account, circuit
from system.soak.schedule import DEATHS, LEARNER, NODE, ROLLOUT, SIM_ACTOR, FaultSchedule

# a short training that updates every step: groups with equal rewards are kept, since a model
# built from a config cannot score yet
TRAINING = [
    "run.checkpoint_every=1",
    "run.keep_checkpoints=2",
    "run.eval_queries=1",
    "run.eval_baselines=[]",
    "algorithm.queries_per_step=1",
    "algorithm.group_size=2",
    "algorithm.budget=2",
    "algorithm.flat_groups=keep",
    "rollout.sampling.max_new_tokens=24",
    "tasks.train=[ota5t_generic]",
    "tasks.eval=[ota5t_generic]",
    "sim.max_workers=2",
]
ACTOR_CLASS = {SIM_ACTOR: "SimActor", ROLLOUT: "RolloutActor", LEARNER: "LearnerRank"}
_STORE = 100 * 2**20


@dataclass(frozen=True)
class SoakSettings:
    out: Path
    seed: int = 0
    steps: int = 6
    hang: float = 0.1  # of the load's designs, those that make ngspice hang
    crash: float = 0.15  # and those that make it kill itself
    concurrency: int = 6  # load requests in flight
    sim_kill_every_s: float = 5.0
    death_every_updates: int = 2
    node_every_s: float = 40.0
    overrides: tuple[str, ...] = ()


class _CountedLearner:
    """The learner group, with each update it completes written down (time, step)."""

    def __init__(self, inner, updates: list):
        self._inner, self._updates = inner, updates

    def train_step(self, batch, step: int, *args, **kwargs) -> dict:
        out = self._inner.train_step(batch, step, *args, **kwargs)
        self._updates.append((time.monotonic(), step))
        return out

    def __getattr__(self, name):
        return getattr(self._inner, name)


class SoakTrainer(Trainer):
    """The trainer of `tlgrpo train`, watched: its pools, its updates and the queries each step drew."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.pools: list = []
        self.updates: list[tuple[float, int]] = []
        self.queries_by_step: dict[int, list[tuple]] = {}

    def _components(self, model_path: str):
        pool, fleet, learner, sync, fmt = super()._components(model_path)
        self.pools.append(pool)
        return pool, fleet, _CountedLearner(learner, self.updates), sync, fmt

    async def queries(self, step: int, source) -> list:
        chosen = await super().queries(step, source)
        self.queries_by_step.setdefault(step, []).append(tuple((t.name, q.seed, q.specs) for t, q in chosen))
        return chosen


@dataclass
class SimLoad:
    """Designs of the trap circuit, `concurrency` in flight, through an elastic pool of its own
    that grows onto the second node while it is there. Every request is written down with its
    answer; one still unanswered at the end is lost."""

    settings: SoakSettings
    records: list = field(default_factory=list)  # (kind, design, status, reason, metrics)
    requested: int = 0
    lost: int = 0

    def run(self, stop: threading.Event) -> None:
        asyncio.run(self._main(stop))

    async def _main(self, stop: threading.Event) -> None:
        from simworkers.catalog import load_task
        from simworkers.pool import SimPool
        from simworkers.sizing import PoolSizer

        task = load_task(circuit.NAME)
        rng = random.Random(self.settings.seed + 1)
        pool = SimPool(sizer=PoolSizer(min_actors=1, max_actors=6, idle_s=5.0))
        inflight: set[asyncio.Task] = set()

        async def one(kind, design):
            result = await pool.submit(task, design)
            self.records.append((kind, design, result.status, result.reason, result.metrics))

        while not stop.is_set():
            while len(inflight) < self.settings.concurrency:
                self.requested += 1
                job = asyncio.ensure_future(one(*circuit.draw_design(rng, self.settings.hang, self.settings.crash)))
                inflight.add(job)
                job.add_done_callback(inflight.discard)
            await asyncio.sleep(0.05)
        if inflight:  # every request must come back; give the stragglers time to be retried
            await asyncio.wait(inflight, timeout=180)
        self.lost = pool.unanswered
        pool.shutdown()


class Injector:
    """Applies the schedule: kills processes of this cluster, adds and removes the second node."""

    def __init__(self, settings: SoakSettings, cluster, trainer: SoakTrainer):
        self.schedule = FaultSchedule(
            settings.seed, settings.sim_kill_every_s, settings.death_every_updates, node_every_s=settings.node_every_s
        )
        self.rng = random.Random(settings.seed + 2)
        self.cluster, self.trainer = cluster, trainer
        self.node = None
        self.faults: list[tuple[float, str]] = []  # (monotonic time, kind), each one applied
        self.missed: Counter = Counter()  # due, but nothing of that kind was alive

    def run(self, stop: threading.Event) -> None:
        started = time.monotonic()
        while not stop.wait(0.2):
            for kind in self.schedule.due(time.monotonic() - started, len(self.trainer.updates)):
                applied = self._apply(kind)
                if applied:
                    self.faults.append((time.monotonic(), applied))
                else:
                    self.missed[kind] += 1

    def _apply(self, kind: str) -> str | None:
        if kind == NODE:
            if self.node is None:
                self.node = self.cluster.add_node(num_cpus=3, resources={"sim": 3}, object_store_memory=_STORE)
                return "node_added"
            node, self.node = self.node, None
            self.cluster.remove_node(node, allow_graceful=False)
            return "node_removed"
        return kind if self._kill(ACTOR_CLASS[kind]) else None

    def _kill(self, actor_class: str) -> bool:
        """SIGKILL one live process of the actor class, chosen by the seeded generator."""
        import psutil

        tag = f"ray::{actor_class}"
        found = []
        for proc in psutil.Process(os.getpid()).children(recursive=True):
            try:
                if " ".join(proc.cmdline()).startswith(tag):
                    found.append(proc)
            except psutil.Error:
                continue
        if not found:
            return False
        victim = self.rng.choice(sorted(found, key=lambda p: p.pid))
        try:
            victim.kill()
        except psutil.Error:
            return False
        return True

    def leave(self) -> None:
        if self.node is not None:
            self.cluster.remove_node(self.node, allow_graceful=False)
            self.node = None


def run_soak(settings: SoakSettings) -> dict:
    """The soak, start to end; returns the account and writes soak.json and soak.md in `out`."""
    import ray
    from ray.cluster_utils import Cluster

    from system.config import load_config

    out = settings.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    circuit.write_task(out / "tasks")
    os.environ["TLGRPO_TASK_PATH"] = os.pathsep.join(
        filter(None, [str(out / "tasks"), os.environ.get("TLGRPO_TASK_PATH")])
    )
    cfg = load_config(
        "tiny-cpu",
        [
            *TRAINING,
            f"run.out_dir={out / 'train'}",
            f"run.steps={settings.steps}",
            f"run.seed={settings.seed}",
            f"run.max_failures={4 * settings.steps + 10}",
            *settings.overrides,
        ],
    )
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 16,
            "resources": {"sim": 2},
            "object_store_memory": _STORE,
            "include_dashboard": False,
        },
    )
    ray.init(address=cluster.address, log_to_driver=False)
    trainer = SoakTrainer(cfg)
    load, injector = SimLoad(settings), Injector(settings, cluster, trainer)
    trained, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def train() -> None:
        try:
            trainer.run()
        except BaseException as exc:  # raised again in the main thread once everything stopped
            failure.append(exc)
        finally:
            trained.set()

    # the injector stays on the main thread: a Ray node can only be started from there
    threads = [threading.Thread(target=load.run, args=(stop,)), threading.Thread(target=train)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        injector.run(trained)
    finally:
        trained.wait()
        stop.set()
        for thread in threads:
            thread.join()
        injector.leave()
        ray.shutdown()
        cluster.shutdown()
    if failure:
        raise failure[0]
    report = _account(settings, trainer, load, injector, time.monotonic() - started)
    (out / "soak.json").write_text(json.dumps(report, indent=1))
    (out / "soak.md").write_text(account.markdown(report))
    return report


def _account(settings: SoakSettings, trainer: SoakTrainer, load: SimLoad, injector: Injector, wall_s: float) -> dict:
    final = trainer.checkpoints.latest()
    trained = trainer.checkpoints.load_state(final).trained if final else []
    kinds = Counter(kind for _, kind in injector.faults)
    designs = Counter(kind for kind, *_ in load.records)
    faults = {
        "ngspice hangs (trap designs)": designs["hang"],
        "ngspice crashes (trap designs)": designs["crash"],
        SIM_ACTOR: kinds[SIM_ACTOR],
        ROLLOUT: kinds[ROLLOUT],
        LEARNER: kinds[LEARNER],
        "node_added": kinds["node_added"],
        "node_removed": kinds["node_removed"],
    }
    wrong = [(k, d, s, r, m) for k, d, s, r, m in load.records if not circuit.answer_matches(k, d, s, m, r)]
    infra = sum(r.startswith("infrastructure") for _, _, _, r, _ in load.records)
    last_pool = trainer.pools[-1] if trainer.pools else None
    training_answered: Counter = Counter()
    for pool in trainer.pools:
        training_answered.update(pool.stats().completed)
    withdrawn = sum(p.unanswered for p in trainer.pools[:-1])
    sims = {
        "load": {
            "requested": load.requested,
            "answered": dict(Counter(s for _, _, s, _, _ in load.records)),
            "lost": load.lost,
            "checked_right": len(load.records) - len(wrong),
            "checked_wrong": len(wrong),
            "infrastructure": infra,
            # the answers that did not fit, so that a failed soak says which and why (at most 20)
            "wrong": [
                {"kind": k, "status": st, "reason": r[:200], "f3db": m.get("f3db"), "corner_hz": circuit.corner_hz(d)}
                for k, d, st, r, m in wrong[:20]
            ],
        },
        "training": {
            "requested": sum(training_answered.values()) + sum(p.unanswered for p in trainer.pools),
            "answered": dict(training_answered),
            "lost": last_pool.unanswered if last_pool else 0,
            "withdrawn": withdrawn,
        },
    }
    updates_at = [t for t, _ in trainer.updates]
    recovery = account.time_to_next_update([(t, k) for t, k in injector.faults if k in DEATHS], updates_at)
    recovery["driver rebuild"] = account.time_to_next_update(
        [(r["at"], "rebuild") for r in trainer.recoveries], updates_at
    ).get("rebuild", [])
    return {
        "seed": settings.seed,
        "wall_s": wall_s,
        "settings": {k: v for k, v in vars(settings).items() if k != "out"} | {"out": str(settings.out)},
        "faults": faults,
        "faults_due_with_nothing_to_kill": dict(injector.missed),
        "simulation_faults": faults["ngspice hangs (trap designs)"]
        + faults["ngspice crashes (trap designs)"]
        + kinds[SIM_ACTOR],
        "deaths": kinds[ROLLOUT] + kinds[LEARNER],
        "simulations": sims,
        "training": {
            "lineage": account.lineage(trained, settings.steps),
            "discarded_updates": account.discarded_updates([s for _, s in trainer.updates], trained),
            "data_position": account.data_position(trainer.queries_by_step),
            "recoveries": [{k: v for k, v in r.items() if k != "at"} for r in trainer.recoveries],
        },
        "recovery_s": recovery,
    }


def broken_promises(report: dict) -> list[str]:
    """What the soak must never see; an empty list is a pass."""
    sims, train = report["simulations"], report["training"]
    load = sims["load"]
    problems = []
    if load["lost"] or sims["training"]["lost"]:
        problems.append(f"simulations lost: {load['lost']} of the load, {sims['training']['lost']} of the training")
    if load["checked_wrong"] > load["infrastructure"]:
        problems.append(
            f"{load['checked_wrong'] - load['infrastructure']} answers do not fit the design that asked: "
            + "; ".join(f"{w['kind']} design, {w['status']}: {w['reason'] or w['f3db']}" for w in load["wrong"][:5])
        )
    lin = train["lineage"]
    if lin["trained_twice"] or lin["skipped"] or not lin["in_order"]:
        problems.append(f"training lineage broken: {lin}")
    if train["data_position"]["steps_with_other_queries"]:
        problems.append(f"steps that drew other queries when run again: {train['data_position']}")
    return problems
