"""A vLLM engine behind the same interface as the HF engine: token ids in, ids and log-probs out.

Prompts go in as token ids (`TokensPrompt`), prefix caching is on, and log-probs of the sampled
tokens come back after temperature and top-p (`processed_logprobs`, as the HF engine reports
them). New weights are loaded in place: the state dict travels to the worker as one safetensors
blob through `collective_rpc` (a worker extension), and the prefix cache is reset, since cached
prefixes computed with the old weights would give wrong outputs. On CPU the engine runs
in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), eager, with a small KV cache.
"""

from __future__ import annotations

import os

import torch

from wire.sampling import Generation, Sampling


class WeightReceiver:
    """vLLM worker extension (`LLM(worker_extension_cls=...)`): methods run on every worker."""

    def tlgrpo_load_weights(self, blob: bytes) -> int:
        from safetensors.torch import load

        weights = load(blob)
        # reload_weights repacks for the backend (oneDNN on CPU); load_weights does not, there
        self.reload_weights(weights_iterator=iter(weights.items()))
        return len(weights)

    def tlgrpo_join_weight_group(self, host: str, port: int, rank: int, world: int, backend: str) -> None:
        from wire.weights import WeightGroup

        self._tlgrpo_group = WeightGroup(host, port, rank, world, backend)

    def tlgrpo_receive_weights(self, plan: list) -> int:
        """Take a bucketed broadcast (wire/weights.py); every worker receives every bucket."""
        from wire.weights import receive_buckets

        device = self.device if hasattr(self, "device") else torch.device("cpu")
        received = [(name, tensor.clone()) for name, tensor in receive_buckets(self._tlgrpo_group, plan, device)]
        self.reload_weights(weights_iterator=iter(received))
        return len(received)


class VLLMEngine:
    def __init__(
        self,
        path: str,
        kv_cache_bytes: int = 256 * 2**20,
        dtype: str = "auto",
        gpu_memory_utilization: float | None = None,
        seed: int = 0,
    ):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        on_gpu = torch.cuda.is_available()
        options = {"gpu_memory_utilization": gpu_memory_utilization} if on_gpu and gpu_memory_utilization else {}
        if not on_gpu:
            options["kv_cache_memory_bytes"] = kv_cache_bytes
        self.llm = LLM(
            model=path,
            dtype=dtype,
            enable_prefix_caching=True,
            enforce_eager=not on_gpu,
            seed=seed,
            logprobs_mode="processed_logprobs",
            worker_extension_cls="actors.vllm_engine.WeightReceiver",
            **options,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.version = 0

    def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        return self.generate_batch([prompt_ids], sampling)[0]

    def generate_batch(self, prompts: list[list[int]], sampling: Sampling) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            max_tokens=sampling.max_new_tokens,
            logprobs=0,  # the sampled token's log-prob only
            seed=sampling.seed,
        )
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompts], params, use_tqdm=False)
        results = []
        for output in outputs:
            completion = output.outputs[0]
            ids = list(completion.token_ids)
            logprobs = [step[token].logprob for step, token in zip(completion.logprobs or [], ids)]
            results.append(Generation(ids, logprobs, completion.finish_reason == "stop", self.version))
        return results

    def update_weights(self, version: int, state_dict: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save

        # tied embeddings share storage with lm_head: safetensors refuses shared tensors
        unique = {k: v.contiguous().clone() for k, v in state_dict.items()}
        self.llm.collective_rpc("tlgrpo_load_weights", args=(save(unique),))
        self.llm.reset_prefix_cache()
        self.version = version

    def join_weight_group(self, host: str, port: int, rank: int, world: int, backend: str) -> None:
        """One worker (tensor parallelism 1) joins the learner's weight-sync group at `rank`."""
        self.llm.collective_rpc("tlgrpo_join_weight_group", args=(host, port, rank, world, backend))

    def receive_weights(self, version: int, plan: list) -> None:
        self.llm.collective_rpc("tlgrpo_receive_weights", args=(plan,))
        self.llm.reset_prefix_cache()
        self.version = version
