"""A policy's architecture without its weights: the `config.json` of a model folder, of an
installed model, or of one shipped under `configs/models/`, built on the meta device so that its
parameters are counted exactly by the same transformers class that a run trains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the counts need torch and transformers only (system/plan/gpu.py runs without pydantic)
    from system.config import TrainConfig

SHIPPED = Path(__file__).resolve().parent.parent.parent / "configs" / "models"


@dataclass(frozen=True)
class Architecture:
    """What the plan needs of a model: exact counts from the meta-device model, shapes from its
    config. `expert_params` are the routed experts' weights (0 for a dense model), of which a
    token uses `experts_per_token / experts`."""

    name: str
    model_class: str
    params: int
    expert_params: int
    root_params: int  # outside every decoder layer: embeddings, final norm, head (FSDP's root unit)
    layer_params: int  # the largest decoder layer (one FSDP unit)
    layers: int
    hidden: int
    q_dim: int  # attention heads x head dim
    kv_dim: int  # key-value heads x head dim
    intermediate: int  # the dense MLP's width (0 where every layer is MoE)
    moe_intermediate: int
    experts: int
    experts_per_token: int
    vocab: int
    experts_implementation: str | None  # what transformers picked here; None for a dense model

    @property
    def active_params(self) -> int:
        """Parameters one token passes through."""
        if not self.experts:
            return self.params
        return self.params - self.expert_params + self.expert_params * self.experts_per_token // self.experts

    @property
    def kv_bytes_per_token(self) -> int:
        """bf16 keys and values of every layer."""
        return 2 * self.layers * self.kv_dim * 2


def config_folder(cfg: TrainConfig, name: str | None = None) -> tuple[str, Path | None]:
    """(name, folder holding config.json) of the policy: `name` (a shipped architecture) if given,
    else `model.path` (a folder, an installed model, or a folder named like a shipped
    architecture: /mnt/.../Qwen3-30B-A3B finds configs/models/qwen3-30b-a3b), else the tiny model
    (folder None: built from `model.tiny`)."""
    from system.config import ConfigError

    if name:
        folder = SHIPPED / name
        if not (folder / "config.json").exists():
            shipped = ", ".join(sorted(p.name for p in SHIPPED.iterdir() if (p / "config.json").exists()))
            raise ConfigError(f"--architecture {name}: no such shipped architecture (shipped: {shipped})")
        return name, folder
    if cfg.model.path is None:
        built = Path(cfg.run.out_dir) / "base_model"  # the run's tiny model, once built: exact vocabulary
        if (built / "config.json").exists():
            return f"tiny ({built})", built
        return f"tiny (hidden {cfg.model.tiny.hidden}, {cfg.model.tiny.layers} layers, vocabulary at its cap)", None
    path = Path(cfg.model.path).expanduser()
    if (path / "config.json").exists():
        return path.name, path
    from system.models.install import ModelError, resolve_model

    try:
        return cfg.model.path, Path(resolve_model(cfg.model.path))
    except ModelError:
        pass
    shipped = SHIPPED / path.name.lower()
    if (shipped / "config.json").exists():
        return shipped.name, shipped
    raise ConfigError(
        f"config key model.path: no config.json at {cfg.model.path}, and no shipped architecture named "
        f"{path.name.lower()!r} under {SHIPPED}: give --architecture NAME or a folder with its config.json"
    )


def load_architecture(cfg: TrainConfig, name: str | None = None) -> Architecture:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    label, folder = config_folder(cfg, name)
    if folder is None:
        from system.models.tiny import TINY_VOCAB, tiny_config

        config = tiny_config(TINY_VOCAB, cfg.model.tiny.hidden, cfg.model.tiny.layers)
    else:
        config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return describe(label, model)


def describe(label: str, model) -> Architecture:
    """Counts from a built model (meta or real): the same numbers either way."""
    config = model.config
    layer_types = set(getattr(model, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in layer_types]
    in_layers = {id(p) for layer in layers for p in layer.parameters()}
    unique = {id(p): p for p in model.parameters()}  # tied embeddings count once
    params = sum(p.numel() for p in unique.values())
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    n_experts = getattr(config, "num_experts", None) or getattr(config, "num_local_experts", None) or 0
    dense_everywhere = n_experts == 0 or bool(getattr(config, "mlp_only_layers", None))
    return Architecture(
        name=label,
        model_class=type(model).__name__,
        params=params,
        expert_params=experts,
        root_params=sum(p.numel() for i, p in unique.items() if i not in in_layers),
        layer_params=max((sum(p.numel() for p in layer.parameters()) for layer in layers), default=0),
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        q_dim=heads * head_dim,
        kv_dim=config.num_key_value_heads * head_dim,
        intermediate=config.intermediate_size if dense_everywhere else 0,
        moe_intermediate=getattr(config, "moe_intermediate_size", 0) or 0,
        experts=n_experts,
        experts_per_token=getattr(config, "num_experts_per_tok", 0) or 0,
        vocab=config.vocab_size,
        experts_implementation=getattr(config, "_experts_implementation", None) if n_experts else None,
    )
