"""A Hugging Face transformers engine: token ids in, sampled token ids and their log-probs out.

The engine never sees text: prompts are token ids and so are results, so that the ids a learner
trains on are exactly the ids that were sampled.
"""

from __future__ import annotations

import threading

import torch

from wire.sampling import Generation, Sampling


class HFEngine:
    def __init__(self, path: str, device: str = "cpu", dtype: torch.dtype = torch.float32):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        self.device = device
        self.stop_ids = sorted({i for i in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id) if i is not None})
        self._lock = threading.Lock()  # one generate at a time on one model
        self.version = 0

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
        """Sample a reply for each prompt in one padded batch (padding on the left)."""
        with self._lock:
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            pad = self.stop_ids[0]
            width = max(len(p) for p in prompts)
            input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
            mask = torch.zeros((len(prompts), width), dtype=torch.long)
            for i, ids in enumerate(prompts):
                input_ids[i, width - len(ids) :] = torch.tensor(ids)
                mask[i, width - len(ids) :] = 1
            greedy = sampling.temperature <= 0
            out = self.model.generate(
                input_ids.to(self.device),
                attention_mask=mask.to(self.device),
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
