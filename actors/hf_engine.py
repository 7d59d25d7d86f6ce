"""A Hugging Face transformers engine: token ids in, sampled token ids and their log-probs out.

The engine never sees text: prompts are token ids and so are results, so that the ids a learner
trains on are exactly the ids that were sampled.
"""

from __future__ import annotations

import inspect
import threading

import torch

from wire.sampling import Generation, Sampling


class HFEngine:
    def __init__(self, path: str, device: str = "cpu", dtype: torch.dtype = torch.float32, kv_cache: str = "static"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        self.device = device
        self.stop_ids = sorted({i for i in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id) if i is not None})
        self._lock = threading.Lock()  # one generate at a time on one model
        self.version = 0
        # "static": one cache of fixed length written in place; "dynamic" (transformers' default)
        # grows by concatenation, copying every row's whole history once per decoded token
        self.kv_cache = kv_cache
        # transformers 5.24 renamed the cache argument `past_key_values` to `cache` (the old name
        # warns and is to go); earlier 5.x releases, the vLLM environment's included, know only the old
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        return self.generate_batch([prompt_ids], sampling)[0]

    def update_weights(self, version: int, state_dict: dict[str, torch.Tensor]) -> None:
        """All weights, or those that train (learner.train_layers): the others never change."""
        unexpected = self.model.load_state_dict(state_dict, strict=False).unexpected_keys
        if unexpected:
            raise KeyError(f"weights the policy does not have: {unexpected[:5]}")
        self.version = version

    def join_weight_group(self, host: str, port: int, rank: int, world: int, backend: str) -> None:
        from wire.weights import WeightGroup

        self._weight_group = WeightGroup(host, port, rank, world, backend)

    @torch.no_grad()
    def receive_weights(self, version: int, plan: list) -> None:
        """Take a bucketed broadcast (wire/weights.py) straight into the parameters."""
        from wire.weights import receive_buckets

        with self._lock:
            state = self.model.state_dict()
            for name, tensor in receive_buckets(self._weight_group, plan, self.device):
                state[name].copy_(tensor)
            self.version = version

    @torch.no_grad()
    def generate_batch(self, prompts: list[list[int]], sampling: Sampling) -> list[Generation]:
        """Sample a reply for each prompt in one batch. Prompts that share a prefix (a group's G
        samples; later turns of one query) have it computed once: the prefixes run first, each
        once, and their KV cache is copied to every row that starts with it; each row's rest is
        then prefilled and decoded together. A row is [pad, prefix, pad, rest]: padding on the
        left of both parts, masked, with positions that skip it."""
        from transformers import DynamicCache, StaticCache

        with self._lock:
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            pad = self.stop_ids[0]
            prefixes, owner = shared_prefixes(prompts)
            pre_ids, pre_mask = _left_padded(prefixes, max(len(p) for p in prefixes), pad)
            rest = [ids[len(prefixes[owner[i]]) :] for i, ids in enumerate(prompts)]
            rest_ids, rest_mask = _left_padded(rest, max(len(r) for r in rest), pad)
            width = pre_ids.shape[1] + rest_ids.shape[1]
            if self.kv_cache == "static":
                cache = StaticCache(config=self.model.config, max_cache_len=width + sampling.max_new_tokens)
            else:
                cache = DynamicCache(config=self.model.config)
            if pre_ids.shape[1]:
                self.model(
                    input_ids=pre_ids.to(self.device),
                    attention_mask=pre_mask.to(self.device),
                    position_ids=(pre_mask.cumsum(-1) - 1).clamp(min=0).to(self.device),
                    **{self._cache_arg: cache},
                    use_cache=True,
                    logits_to_keep=1,
                )
                cache.reorder_cache(torch.tensor(owner, device=self.device))  # a copy of its prefix per row
            input_ids = torch.cat([pre_ids[owner], rest_ids], dim=1)
            mask = torch.cat([pre_mask[owner], rest_mask], dim=1)
            greedy = sampling.temperature <= 0
            out = self.model.generate(
                input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                **{self._cache_arg: cache},
                max_new_tokens=sampling.max_new_tokens,
                do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                top_k=None,
                eos_token_id=self.stop_ids,
                pad_token_id=pad,
                output_scores=True,
                return_dict_in_generate=True,
            )
            new = out.sequences[:, width:]
            # processed logits per step: the distribution the sampler drew from
            logprobs = torch.log_softmax(torch.stack(out.scores, dim=1).float(), dim=-1)
            results = []
            for i in range(len(prompts)):
                ids = new[i].tolist()
                end = next((k + 1 for k, t in enumerate(ids) if t in self.stop_ids), len(ids))
                ids = ids[:end]  # rows that stopped early are padded after their stop token
                row = logprobs[i, :end].gather(1, new[i, :end].unsqueeze(1))[:, 0].tolist()
                results.append(Generation(ids, row, bool(ids) and ids[-1] in self.stop_ids, self.version))
            return results


def _left_padded(rows: list[list[int]], width: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
    return ids, mask


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = (torch.tensor(a[:n]) != torch.tensor(b[:n])).nonzero()
    return int(differ[0, 0]) if len(differ) else n


def shared_prefixes(prompts: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """The distinct prefixes to compute once, and each prompt's. A prompt joins the prefix it
    shares the most with, when that keeps at least half of the prefix (so one group's prompt is
    not cut back to what two queries of a task share); every prompt keeps at least its last token
    out of its prefix, to be fed with the rest."""
    prefixes: list[list[int]] = []
    owner: list[int] = []
    for ids in prompts:
        shared = [_common(p, ids) for p in prefixes]
        best = max(range(len(prefixes)), key=shared.__getitem__, default=None)
        if best is not None and shared[best] * 2 >= len(prefixes[best]) and shared[best] > 0:
            prefixes[best] = prefixes[best][: shared[best]]
            owner.append(best)
        else:
            prefixes.append(list(ids))
            owner.append(len(prefixes) - 1)
    for k, prefix in enumerate(prefixes):
        shortest = min(len(prompts[i]) for i in range(len(prompts)) if owner[i] == k)
        prefixes[k] = prefix[: shortest - 1]
    return prefixes, owner
