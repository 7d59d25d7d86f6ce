"""What `tlgrpo plan` and the learner assume of a GPU, measured on one. On a machine with CUDA:

    python -m system.plan.gpu [--layers 2] [--json PATH]

builds Qwen3-30B-A3B's architecture (configs/models/qwen3-30b-a3b) cut to LAYERS decoder layers,
with random bf16 weights (no download: a config is numbers, not weights), and measures three
things on packed TL-GRPO rows (a shared history followed by G branches, learner/packing.py):

1. experts: forward and backward with `experts_implementation="grouped_mm"` and with the eager
   per-expert loop: time, and how many calls reached torch's grouped GEMM (0 means transformers
   fell back to its own loop, which it does without a word on GPUs before SM80);
2. activations: the peak memory of one forward and backward above the weights and gradients,
   against the plan's estimate (system/plan/arithmetic.py: activations + working set) for the same
   row, with and without activation checkpointing;
3. attention: the learner's flex-attention block mask (GPU) against the per-block SDPA path
   (what the CPU runs, the reference): largest differences of outputs and gradients, and times;
4. learner: the FSDP2 learner rank itself (learner/rank.py) training three TL-GRPO batches,
   its step times and losses, and its peak memory against the plan's learner GPU; then its
   log-probs, a full state dict, and a checkpoint saved, trained past and loaded back.

Prints one JSON object; docs/scaling.md quotes it as measured. `--device cpu --small` runs the
same code on a small cut and a short row, as a check of the script itself (no flex backward on
CPU: part 3 is skipped there).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from learner.attention import flex_blocks, register, sdpa_blocks
from learner.forward import packed_logprobs
from learner.packing import pack
from system.plan.architecture import SHIPPED, describe
from system.plan.arithmetic import GIB, learner_memory


def shared_row(history: int, branches: int, action: int, vocab: int, seed: int = 0):
    """One TL-GRPO turn group as the learner packs it: a history, then `branches` actions."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (history + branches * action,), generator=g).tolist()
    bounds = [history + k * action for k in range(branches + 1)]
    return pack([ids], [bounds])


def cut_config(layers: int, small: bool):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(SHIPPED / "qwen3-30b-a3b")
    config.num_hidden_layers = layers
    if small:  # a check of the script on CPU: same layer types, small widths
        config.hidden_size, config.moe_intermediate_size, config.num_experts = 256, 64, 16
        config.num_attention_heads, config.num_key_value_heads, config.head_dim = 4, 2, 64
        config.vocab_size = 4096
    return config


def build(layers: int, experts: str, device: str, small: bool):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(
        cut_config(layers, small), dtype=torch.bfloat16, attn_implementation=register(), experts_implementation=experts
    )
    return model.to(device).train()


class GroupedCalls:
    """Counts calls of torch's grouped GEMM while it is entered (the public name where torch has
    it, else the private one: the public one calls the private one)."""

    def __enter__(self):
        self.calls = 0
        public = hasattr(torch.nn.functional, "grouped_mm")
        self.owner, self.name = (torch.nn.functional, "grouped_mm") if public else (torch, "_grouped_mm")
        self.original = getattr(self.owner, self.name, None)
        if self.original is not None:

            def counted(*args, **kwargs):
                self.calls += 1
                return self.original(*args, **kwargs)

            setattr(self.owner, self.name, counted)
        return self

    def __exit__(self, *_):
        if self.original is not None:
            setattr(self.owner, self.name, self.original)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step(model, packed, device: str) -> None:
    logprobs, _ = packed_logprobs(model, packed, torch.device(device), "blocks")
    logprobs.sum().backward()


def timed(fn, device: str, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def experts_part(args, packed) -> dict:
    out = {}
    for implementation in ("grouped_mm", "eager"):
        model = build(args.layers, implementation, args.device, args.small)
        with GroupedCalls() as calls:
            seconds = timed(lambda m=model: step(m, packed, args.device), args.device, args.repeats)
        out[implementation] = {
            "picked": getattr(model.config, "_experts_implementation", None),
            "grouped_gemm_calls": calls.calls,
            "seconds": round(seconds, 4),
            "tokens_per_s": round(packed.length / seconds),
        }
        del model
        if args.device == "cuda":
            torch.cuda.empty_cache()
    out["eager_over_grouped"] = round(out["eager"]["seconds"] / out["grouped_mm"]["seconds"], 2)
    return out


def activations_part(args, rows) -> list[dict]:
    out = []
    for checkpointing in (False, True):
        model = build(args.layers, "grouped_mm", args.device, args.small)
        if checkpointing:
            model.gradient_checkpointing_enable()
        arch = describe("qwen3-30b-a3b cut", model)
        step(model, shared_row(256, 2, 64, arch.vocab), args.device)  # gradients allocated
        for packed in rows:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            step(model, packed, args.device)
            torch.cuda.synchronize()
            measured = torch.cuda.max_memory_allocated() - before
            plan = learner_memory(
                arch, 1, packed.length, gpu=True, bf16=True, checkpointing=checkpointing, reference=False
            )
            planned = plan.activations + plan.working
            out.append(
                {
                    "tokens": packed.length,
                    "checkpointing": checkpointing,
                    "measured_gib": round(measured / GIB, 3),
                    "planned_gib": round(planned / GIB, 3),
                    "measured_over_planned": round(measured / planned, 3),
                }
            )
        del model
        torch.cuda.empty_cache()
    return out


def attention_part(args, packed) -> dict:
    heads, kv_heads, dim = 32, 4, 128
    n = packed.length
    g = torch.Generator(device=args.device).manual_seed(0)

    def tensor(h):
        x = torch.randn((1, h, n, dim), device=args.device, dtype=torch.bfloat16, generator=g)
        return x.requires_grad_()

    q, k, v = tensor(heads), tensor(kv_heads), tensor(kv_heads)
    scale = dim**-0.5
    results = {}
    for name, attend in (("flex_blocks", flex_blocks), ("sdpa_blocks", sdpa_blocks)):

        def run(attend=attend):
            q.grad = k.grad = v.grad = None
            out = attend(q, k, v, packed, scale)
            out.float().square().sum().backward()
            return out

        seconds = timed(run, args.device, args.repeats)
        out = run()
        grads = [t.grad.clone() for t in (q, k, v)]
        results[name] = {"seconds": round(seconds, 4), "out": out.detach(), "grads": grads}
    flex, ref = results["flex_blocks"], results["sdpa_blocks"]
    return {
        "tokens": n,
        "flex_seconds": flex["seconds"],
        "sdpa_blocks_seconds": ref["seconds"],
        "sdpa_over_flex": round(ref["seconds"] / flex["seconds"], 2),
        # the largest difference over the largest magnitude, for the output and each of q, k, v's gradients
        "relative_diff_out": relative(flex["out"], ref["out"]),
        "relative_diff_grads": [relative(a, b) for a, b in zip(flex["grads"], ref["grads"])],
    }


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return round(float((a.float() - b.float()).abs().max() / b.float().abs().max()), 5)


def learner_part(args) -> dict:
    """The learner as a run uses it: one FSDP2 rank (world 1; NCCL on GPU) loads the cut model
    from a folder in fp32, computes in bf16 with grouped_mm experts, the flex block mask and
    activation checkpointing, and trains three TL-GRPO batches (one turn group each: a history
    and 8 actions). Its peak memory is set against the plan's learner GPU less the CUDA constant."""
    import tempfile

    from transformers import AutoModelForCausalLM

    from learner.config import LearnerConfig
    from learner.rank import LearnerRank, free_port
    from system.bench.learner import turn_group_batch

    history, action = (4096, 512) if args.small else (8192, 1024)
    folder = Path(tempfile.mkdtemp()) / "cut"
    model = AutoModelForCausalLM.from_config(cut_config(args.layers, args.small), dtype=torch.float32)
    model.save_pretrained(folder)
    arch = describe("qwen3-30b-a3b cut", model)
    del model
    tokens = history + 8 * action
    cfg = LearnerConfig(
        device=args.device, bf16=True, activation_checkpointing=True, micro_batch_tokens=tokens, lr=1e-6
    )
    rank = LearnerRank(cfg, str(folder), 0, 1)
    rank.setup(("127.0.0.1", free_port()))
    batches = [
        turn_group_batch(1, arch.vocab, history=history, action=action, group_size=8, share=True, seed=s)
        for s in range(3)
    ]
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    steps = []
    for step, batch in enumerate(batches):
        sync(args.device)
        t0 = time.perf_counter()
        metrics = rank.train_step(batch, step, len(batches))
        sync(args.device)
        steps.append({"seconds": round(time.perf_counter() - t0, 3), "loss": metrics.get("loss")})
    out = {"row_tokens": tokens, "params": arch.params, "steps": steps}
    if args.device == "cuda":
        plan = learner_memory(arch, 1, tokens, gpu=True, bf16=True, checkpointing=True, reference=False)
        planned = plan.total - plan.overhead
        measured = torch.cuda.max_memory_allocated()
        out |= {
            "measured_peak_gib": round(measured / GIB, 3),
            "planned_gib_without_cuda_constant": round(planned / GIB, 3),
            "measured_over_planned": round(measured / planned, 3),
        }
    # what a run does besides training: log-probs, a full state dict, a checkpoint round trip
    before = rank.logprobs(batches[0])
    rank.save(str(folder.parent / "checkpoint"))
    rank.train_step(batches[1], 3, 4)  # the weights move on ...
    rank.load(str(folder.parent / "checkpoint"))  # ... and come back
    after = rank.logprobs(batches[0])
    state = rank.full_state_dict()
    out |= {
        "logprobs_finite": all(math.isfinite(x) for row in before for x in row),
        "checkpoint_round_trip_max_logprob_diff": max(abs(a - b) for x, y in zip(before, after) for a, b in zip(x, y)),
        "full_state_dict": f"{len(state)} tensors on {next(iter(state.values())).device}",
    }
    import torch.distributed as dist

    dist.destroy_process_group()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m system.plan.gpu")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="small widths and rows: a check of the script")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="experts,activations,attention,learner")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    torch.manual_seed(0)
    vocab = 4096 if args.small else 151936
    scale = 16 if args.small else 1
    report: dict = {"torch": torch.__version__, "layers": args.layers}
    if args.device == "cuda":
        report["gpu"] = torch.cuda.get_device_name()
    import transformers

    report["transformers"] = transformers.__version__
    if "experts" in parts:
        report["experts"] = experts_part(args, shared_row(4096 // scale, 8, 512 // scale, vocab))
    if "activations" in parts and args.device == "cuda":
        rows = [shared_row(h // scale, 8, 512 // scale, vocab) for h in (4096, 12288)]
        report["activations"] = activations_part(args, rows)
    if "learner" in parts:
        report["learner"] = learner_part(args)
    if "attention" in parts and args.device == "cuda":
        report["attention"] = attention_part(args, shared_row(8192, 8, 1024, vocab))
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
