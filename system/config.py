"""Training configs: YAML in, typed and validated dataclasses out, before anything starts.

`load_config(path, overrides)` reads a file (or the embedded default `tiny-cpu`), applies
`key.sub=value` overrides (values read as YAML), and checks every key against the dataclasses
below: an unknown key, a wrong type or a value outside its allowed set is refused with its dotted
key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from learner.config import LearnerConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = "tiny-cpu"


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    out_dir: str = "runs/run"  # checkpoints, metrics, evaluations, W&B files; shared storage on a cluster
    seed: int = 0
    steps: int = 10
    checkpoint_every: int = 1  # steps between checkpoints (and one at the end)
    keep_checkpoints: int = 2
    eval_every: int = 0  # steps between evaluations on held-out queries; 0: only at the end
    eval_queries: int = 4  # held-out queries per task
    eval_protocols: list[str] = field(default_factory=lambda: ["multi-turn"])
    eval_baselines: list[str] = field(default_factory=lambda: ["random"])  # random, bo


@dataclass(frozen=True)
class TinyModelConfig:
    hidden: int = 128
    layers: int = 2


@dataclass(frozen=True)
class ModelConfig:
    path: str | None = None  # a Hugging Face model folder; null: build the tiny model from a config
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)


@dataclass(frozen=True)
class TaskConfig:
    train: list[str] = field(default_factory=lambda: ["ota5t_generic", "tia_gf180"])
    eval: list[str] = field(default_factory=lambda: ["ota5t_generic", "tia_gf180"])


@dataclass(frozen=True)
class AlgorithmConfig:
    name: Literal["tl_grpo", "traj_grpo", "single_turn", "gtpo"] = "tl_grpo"
    queries_per_step: int = 32
    group_size: int = 8
    budget: int = 5
    format_penalty: float = 0.5
    gamma: float = 0.9  # GTPO's discount
    flat_groups: Literal["drop", "keep"] = "drop"  # groups whose rewards are all equal
    staleness: int = 0  # 0: on-policy; 1: step k+1's rollout overlaps step k's update


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 4096


@dataclass(frozen=True)
class RolloutConfig:
    engine: Literal["hf", "vllm"] = "hf"
    actors: int = 1
    cpus_per_actor: int = 1
    gpus_per_actor: float = 0.0
    max_batch: int = 8  # requests per engine batch (HF engine)
    batch_window_s: float = 0.005
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    # object_store: one put of the full state dict per update, read by every actor;
    # collective: the learner broadcasts buckets over NCCL (GPU) or gloo (CPU) into the engines
    weight_sync: Literal["object_store", "collective"] = "object_store"
    weight_bucket_mb: int = 256
    max_prompt_tokens: int = 15000  # a history longer than this is not continued: the episode ends


@dataclass(frozen=True)
class SimConfig:
    backend: Literal["shared", "batch"] = "shared"
    min_workers: int = 1
    max_workers: int = 1
    elastic: bool = False  # actors ask for the custom resource `sim` and follow the backlog
    timeout_s: float | None = None


@dataclass(frozen=True)
class WandbConfig:
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"  # auto: online when a key is configured
    project: str = "tl-grpo"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: TaskConfig = field(default_factory=TaskConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"a list ({', '.join(_describe(a) for a in typing.get_args(tp) if a is not Ellipsis)})"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _coerce(value: Any, tp, key: str) -> Any:
    origin = typing.get_origin(tp)
    bad = ConfigError(f"config key {key}: {value!r} is not {_describe(tp)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"config key {key}: expected a mapping of {', '.join(f.name for f in dataclasses.fields(tp))}"
            )
        return build(tp, value, key)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        for option in typing.get_args(tp):
            if option is not type(None):
                try:
                    return _coerce(value, option, key)
                except ConfigError:
                    pass
        raise bad
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise bad
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        items = typing.get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(items):
            raise bad
        return tuple(_coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, items)))
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise ConfigError(f"config key {key}: unsupported type {tp}")


def build(cls, data: dict, where: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(
                f"unknown config key {where + '.' if where else ''}{key}: allowed keys are {', '.join(sorted(names))}"
            )
    values = {k: _coerce(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    return cls(**values)


def _set(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"override {item!r}: write key.sub=value, e.g. algorithm.group_size=4")
        try:
            out.append((key.strip(), yaml.safe_load(text)))
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({exc.problem})") from None
    return out


def resolve_path(name_or_path: str | None) -> Path:
    """A config file, or the name of one in configs/ (`tiny-cpu`, `single-gpu`, ...)."""
    name = name_or_path or DEFAULT_CONFIG
    path = Path(name)
    if path.exists():
        return path
    shipped = CONFIG_DIR / f"{name}.yaml"
    if shipped.exists():
        return shipped
    available = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"config {name!r}: no such file, and not one of the shipped configs ({available})")


def load_config(name_or_path: str | None = None, overrides: list[str] | None = None) -> TrainConfig:
    path = resolve_path(name_or_path)
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    for key, value in parse_overrides(overrides or []):
        _set(tree, key, value)
    try:
        cfg = build(TrainConfig, tree)
    except TypeError as exc:  # a section given a scalar, caught by dataclass construction
        raise ConfigError(f"{path}: {exc}") from None
    check(cfg)
    from system.evaluate import resolve_tasks

    for key, names in (("tasks.train", cfg.tasks.train), ("tasks.eval", cfg.tasks.eval)):
        try:
            resolve_tasks(names)
        except KeyError as exc:
            raise ConfigError(f"config key {key}: {exc.args[0]}") from None
    return cfg


def check(cfg: TrainConfig) -> None:
    """Rules across keys and ranges, each named by its key."""
    positive = {
        "run.steps": cfg.run.steps,
        "run.checkpoint_every": cfg.run.checkpoint_every,
        "run.keep_checkpoints": cfg.run.keep_checkpoints,
        "run.eval_queries": cfg.run.eval_queries,
        "algorithm.queries_per_step": cfg.algorithm.queries_per_step,
        "algorithm.budget": cfg.algorithm.budget,
        "rollout.actors": cfg.rollout.actors,
        "rollout.max_batch": cfg.rollout.max_batch,
        "rollout.sampling.max_new_tokens": cfg.rollout.sampling.max_new_tokens,
        "rollout.weight_bucket_mb": cfg.rollout.weight_bucket_mb,
        "rollout.max_prompt_tokens": cfg.rollout.max_prompt_tokens,
        "sim.max_workers": cfg.sim.max_workers,
        "learner.world_size": cfg.learner.world_size,
        "learner.micro_batch_tokens": cfg.learner.micro_batch_tokens,
        "learner.minibatches": cfg.learner.minibatches,
        "model.tiny.hidden": cfg.model.tiny.hidden,
        "model.tiny.layers": cfg.model.tiny.layers,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"config key {key}: {value} must be at least 1")
    rules = [
        (
            cfg.algorithm.group_size >= 2,
            "algorithm.group_size",
            "must be at least 2 (advantages are relative to the group)",
        ),
        (cfg.algorithm.staleness in (0, 1), "algorithm.staleness", "must be 0 (on-policy) or 1 (overlap one update)"),
        (0 <= cfg.algorithm.format_penalty, "algorithm.format_penalty", "must be >= 0"),
        (0 < cfg.algorithm.gamma <= 1, "algorithm.gamma", "must be in (0, 1]"),
        (cfg.rollout.sampling.temperature > 0, "rollout.sampling.temperature", "must be > 0 for GRPO sampling"),
        (0 < cfg.rollout.sampling.top_p <= 1, "rollout.sampling.top_p", "must be in (0, 1]"),
        (cfg.learner.lr > 0, "learner.lr", "must be > 0"),
        (cfg.learner.max_grad_norm > 0, "learner.max_grad_norm", "must be > 0"),
        (0 <= cfg.run.eval_every, "run.eval_every", "must be >= 0"),
        (0 <= cfg.sim.min_workers <= cfg.sim.max_workers, "sim.min_workers", "must be between 0 and sim.max_workers"),
        (0 <= cfg.learner.loss.eps_low < 1, "learner.loss.eps_low", "must be in [0, 1)"),
        (0 <= cfg.learner.loss.eps_high, "learner.loss.eps_high", "must be >= 0"),
        (cfg.learner.loss.kl_coef >= 0, "learner.loss.kl_coef", "must be >= 0"),
        (cfg.learner.loss.tis_cap >= 1, "learner.loss.tis_cap", "must be >= 1"),
        (
            cfg.learner.old_logprobs == "learner" or cfg.learner.minibatches == 1,
            "learner.old_logprobs",
            "'engine' uses the update's own log-probs as the old ones, so it needs learner.minibatches=1",
        ),
        (
            cfg.learner.device == "cuda" or cfg.learner.attention != "flash_attention_2",
            "learner.attention",
            "flash_attention_2 needs learner.device=cuda",
        ),
    ]
    for ok, key, why in rules:
        if not ok:
            raise ConfigError(f"config key {key}: {why}")
    for name in cfg.run.eval_protocols:
        if name not in ("multi-turn", "st-iter"):
            raise ConfigError(f"config key run.eval_protocols: {name!r} is not one of 'multi-turn', 'st-iter'")
    for name in cfg.run.eval_baselines:
        if name not in ("random", "bo"):
            raise ConfigError(f"config key run.eval_baselines: {name!r} is not one of 'random', 'bo'")
    if not cfg.tasks.train:
        raise ConfigError("config key tasks.train: name at least one task")


def to_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)


def dump(cfg: TrainConfig) -> str:
    def plain(x):
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [plain(v) for v in x]
        return x

    return yaml.safe_dump(plain(to_dict(cfg)), sort_keys=False)
