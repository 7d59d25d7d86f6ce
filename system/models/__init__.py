"""The policy models a run starts from: a Hugging Face folder or an installed model's name
(`tlgrpo model install`, system/models/install.py) named in the config, or the tiny model built
here from a config (`tiny`). Nothing is downloaded at run time.

May import `system.agent` (the tiny tokenizer learns the protocol's text) and below.
"""

from __future__ import annotations

from pathlib import Path

from system.config import ConfigError, ModelConfig


def policy_model_path(model: ModelConfig, out_dir: Path, seed: int) -> str:
    """The folder the run's policy loads from: `model.path`, or the tiny model, built once into
    `out_dir/base_model`."""
    if model.path:
        from system.models.install import ModelError, resolve_model

        try:
            return resolve_model(model.path)
        except ModelError as exc:
            raise ConfigError(f"config key model.path: {exc}") from None
    base = out_dir / "base_model"
    if not (base / "config.json").exists():
        from system.models.tiny import build_tiny_model

        build_tiny_model(base, model.tiny.hidden, model.tiny.layers, seed=seed)
    return str(base)
