"""How report rows are named: an evaluation row's policy read as a method (an RL run and its seed,
the warm-up, the base model, a baseline), its protocol, and the order rows stand in."""

from __future__ import annotations

import re

from system.config import ALGORITHMS

METHODS = ALGORITHMS  # the RL methods, in report order
LM_POLICY = re.compile(r"^(?:hf|vllm):")  # a local language model's policy: through the HF or the vLLM engine
_RUN = re.compile(r"^(?:hf|vllm):.*?/(?P<method>[a-z_]+)-s(?P<seed>\d+)/final")
_PROTOCOL = re.compile(r" \((?P<protocol>multi-turn|st-iter|n/a)\)$")


def method_of(row_name: str) -> tuple[str, int | None]:
    """('tl_grpo', 0) for an RL run's row, ('warm-up', None) for the warm-up, ('base model', None)
    for an installed model named without a folder (`vllm:smollm2-135m`), else the name."""
    name = _PROTOCOL.sub("", row_name)
    match = _RUN.match(name)
    if match:
        return match["method"], int(match["seed"])
    if LM_POLICY.match(name) and "warmup" in name:
        return "warm-up", None
    if LM_POLICY.match(name) and "/" not in name:
        return "base model", None
    return name, None


def base_method(method: str) -> str | None:
    """The RL method a run's name stands for: itself, or for a variant run named METHOD_VARIANT
    (e.g. `tl_grpo_own`, TL-GRPO trained with another setting) its METHOD; None for anything else."""
    if method in METHODS:
        return method
    return next((m for m in sorted(METHODS, key=len, reverse=True) if method.startswith(m + "_")), None)


def rank(method: str, first: tuple[str, ...] = ()) -> tuple:
    """Where a method's rows stand: `first`, then the RL methods in report order, each variant
    right after its method, then anything else by name."""
    order = [*first, *METHODS]
    if method in order:
        return (order.index(method), 0, method)
    base = base_method(method)
    return (order.index(base), 1, method) if base else (len(order), 0, method)


def label_of(name: str, protocol: str | None = None) -> str:
    """A table row's method: the method (seeds pooled), and ' (st-iter)' for that protocol. `name`
    is a results row's name, "policy (protocol)", or an episode's policy with its protocol."""
    if protocol is None:
        protocol = m["protocol"] if (m := _PROTOCOL.search(name)) else "n/a"
    method = method_of(name)[0]
    return f"{method} (st-iter)" if protocol == "st-iter" else method


def in_row_order(methods) -> list[str]:
    """Baselines first (BO, random search, the shortcuts, the base model, the warm-up), then the RL
    methods, then anything else; a method's ST-iter row right after its multi-turn row."""

    def key(label: str):
        method = label.removesuffix(" (st-iter)")
        first = ("bo", "random", "centre", "reference", "constant", "lookup", "base model", "warm-up")
        return (*rank(method, first), label != method)

    return sorted(methods, key=key)


BASELINES = ("random", "bo", "centre", "reference", "constant", "lookup")  # no protocol, no training seed
