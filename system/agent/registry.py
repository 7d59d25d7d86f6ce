"""Policies by name: `tlgrpo eval --policy NAME`, a config's evaluation baselines, and the
trainer's evaluation of its own checkpoints all make them here."""

from __future__ import annotations

from system.agent.policies import BayesOpt, LLMPolicy, Policy, RandomSearch, hf_opener, openai_opener, vllm_opener
from system.agent.shortcuts import SHORTCUTS, make_shortcut
from wire.storage import local_copy


def make_policy(spec: str, **options) -> Policy:
    """`random`, `bo` (or `bo:CONFIG`, one of BO_CONFIGS), a shortcut baseline (`centre`,
    `reference`, `constant`, `lookup`: system/agent/shortcuts.py), `hf:PATH` (a local Hugging
    Face model), `vllm:PATH` (the same, served by the vLLM engine), or `openai:BASE_URL` with
    options model= (default the server's only model), api_key_env= and tools= (auto, native, text)."""
    if spec in SHORTCUTS:
        return make_shortcut(spec)
    if spec == "random":
        return RandomSearch()
    if spec == "bo":
        return BayesOpt()
    if spec.startswith("bo:"):
        return BayesOpt(spec[3:])
    kind, _, target = spec.partition(":")
    if kind in ("hf", "vllm") and target:
        resolve = options.pop("resolve", None) or (lambda name: name)  # an installed model's name -> folder
        opener = hf_opener if kind == "hf" else vllm_opener
        return LLMPolicy(f"{kind}:{target}", opener(local_copy(resolve(target)), **options))
    if kind == "openai" and target:
        opener, served = openai_opener(target, **options)
        return LLMPolicy(f"openai:{served.model}", opener)
    raise ValueError(
        f"unknown policy {spec!r}: use random, bo, bo:CONFIG, {', '.join(SHORTCUTS)}, hf:PATH, vllm:PATH "
        "or openai:BASE_URL"
    )
