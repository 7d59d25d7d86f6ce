"""What a training config costs, in plain arithmetic: memory per learner GPU, KV-cache room per
rollout engine, tokens and FLOPs per step, simulations per step and the simulation actors that
keep up, weight-sync bytes. No torch, no Ray: every number follows from the architecture's
counts, the config and the hardware, so each formula can be read and tested by hand.

The learner's memory is that of learner/rank.py: FSDP2 full sharding over `world_size` ranks,
fp32 master weights, fp32 gradients and AdamW's two fp32 moments, sharded; on GPU with bf16, one
decoder layer's bf16 copy is gathered at a time (and the next one prefetched), and the root unit
(embeddings, head) stays gathered through forward and backward. Activations are an estimate of
what a decoder layer keeps for its backward pass, per token (see `layer_activation_bytes`); the
log-probs come from the hidden states `LOGPROB_CHUNK` tokens at a time (learner/forward.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from system.plan.architecture import Architecture

GIB = 2**30
LOGPROB_CHUNK = 2048  # learner/forward.py
CUDA_OVERHEAD = 2 * GIB  # CUDA context, NCCL buffers, allocator slack: a planning constant, not measured
VLLM_UTILIZATION = 0.9  # vLLM's default share of GPU memory
VLLM_RUNTIME = 2 * GIB  # vLLM's activations and CUDA graphs beside weights and KV cache: planned


@dataclass(frozen=True)
class Hardware:
    gpus_per_node: int
    gpu_memory_gib: float
    nodes: int

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nodes


@dataclass(frozen=True)
class Workload:
    """One training step's shape (config values, and the prompt sizes the plan measured)."""

    algorithm: str
    queries: int  # B
    group: int  # G
    budget: int  # T
    prompt_tokens: int  # the first message with the tool schema
    response_tokens: int  # one tool response
    new_tokens: int  # generated per turn (the cap by default: a worst case)
    max_prompt_tokens: int  # a longer history is not continued

    def history(self, turn: int) -> int:
        """Tokens before turn `turn` (1-based) of a multi-turn episode, at most the cap."""
        return min(self.max_prompt_tokens, self.prompt_tokens + (turn - 1) * (self.new_tokens + self.response_tokens))

    def st_history(self) -> int:
        """ST-iter's prompt: the query and the latest result only."""
        return min(self.max_prompt_tokens, self.prompt_tokens + self.response_tokens)


def layer_activation_bytes(arch: Architecture, dtype_bytes: int) -> int:
    """Per token, what one decoder layer saves for its backward pass, counted for the Llama/Qwen
    layers transformers implements: the two RMSNorms (input, normalised, output: 6 x hidden),
    q and k through their norms and rotary embedding and v (8 x q_dim + 7 x kv_dim, with the
    attention output and its contiguous copy), and the MLP's gate, up, activation and product
    (4 x width), for each routed expert a token visits along with its dispatched input and
    weighted output (2 x hidden), plus the router's fp32 logits and weights. Held to a measured
    CPU run by the plan's test."""
    attention = 6 * arch.hidden + 8 * arch.q_dim + 7 * arch.kv_dim
    if arch.experts:
        mlp = arch.experts_per_token * (2 * arch.hidden + 4 * arch.moe_intermediate) + 4 * arch.experts // dtype_bytes
    else:
        mlp = 4 * arch.intermediate
    return dtype_bytes * (attention + mlp)


@dataclass(frozen=True)
class LearnerMemory:
    """Bytes per learner GPU (or per rank on CPU)."""

    weights: int
    gradients: int
    optimizer: int
    gathered: int  # unsharded layer copies and the root unit
    reference: int  # the frozen reference model, when kl_coef > 0
    activations: int  # saved for the backward pass
    working: int  # the backward pass's working set: the log-prob chunk or one layer, the larger
    overhead: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f) for f in self.__dataclass_fields__)


def learner_memory(
    arch: Architecture,
    world: int,
    micro_batch_tokens: int,
    *,
    gpu: bool,
    bf16: bool,
    checkpointing: bool,
    reference: bool,
) -> LearnerMemory:
    compute_bytes = 2 if gpu and bf16 else 4
    shard = math.ceil(arch.params / world)
    gathered = 2 * arch.layer_params * compute_bytes + arch.root_params * compute_bytes
    per_layer = layer_activation_bytes(arch, compute_bytes)
    # saved for backward: every layer's activations, or with checkpointing every layer's input only
    saved = arch.layers * per_layer if not checkpointing else arch.layers * arch.hidden * compute_bytes
    # the backward pass's working set, at two moments that never overlap: first the log-prob chunk
    # (one chunk's fp32 logits, log-softmax and its exp; then the recomputed logits and their
    # gradient), later one decoder layer's gradient buffers (with checkpointing, beside that
    # layer's recomputed activations). The peak holds the larger, not both: measured on an H100
    # (system/plan/gpu.py), adding them overstated the peak by 25-55 %.
    chunk = min(LOGPROB_CHUNK, micro_batch_tokens)
    logits = 5 * chunk * arch.vocab * 4
    layer_backward = micro_batch_tokens * per_layer * (2 if checkpointing else 1)
    return LearnerMemory(
        weights=4 * shard,
        gradients=4 * shard + arch.layer_params * 4,  # plus one layer's unsharded gradient before its reduce-scatter
        optimizer=8 * shard,
        gathered=gathered,
        reference=(4 * shard + gathered) if reference else 0,
        activations=micro_batch_tokens * saved,
        working=max(logits, layer_backward),
        overhead=CUDA_OVERHEAD if gpu else 0,
    )


@dataclass(frozen=True)
class EngineMemory:
    """One vLLM engine on `gpus` GPUs (its weights in bf16)."""

    gpus: float
    weights: int
    kv_cache: int
    kv_tokens: int
    sequences: int  # concurrent sequences of the longest length (history cap + new tokens)


def engine_memory(arch: Architecture, gpus: float, gpu_memory: int, longest: int) -> EngineMemory:
    weights = 2 * arch.params
    kv = int(VLLM_UTILIZATION * gpus * gpu_memory) - weights - VLLM_RUNTIME
    tokens = max(0, kv) // arch.kv_bytes_per_token
    return EngineMemory(gpus, weights, kv, tokens, tokens // longest if longest else 0)


@dataclass(frozen=True)
class StepTokens:
    generated: int  # action tokens sampled per step
    prefill: int  # prompt tokens the engines read (before prefix caching)
    trained_shared: int  # learner tokens with each history once per group (learner.attention: blocks)
    trained_unshared: int  # learner tokens with each sample carrying its own history
    simulations: int
    longest_row: int  # the learner's longest row (never cut: a micro-batch holds at least this much)


def step_tokens(w: Workload) -> StepTokens:
    """Per step, by rollout plan (docs/design.md, "Algorithms")."""
    B, G, T, a = w.queries, w.group, w.budget, w.new_tokens
    if w.algorithm in ("tl_grpo", "single_turn"):
        histories = [w.history(t) if w.algorithm == "tl_grpo" else w.st_history() for t in range(1, T + 1)]
        prefill = B * G * sum(histories)
        shared = B * sum(h + G * a for h in histories)
        unshared = B * G * sum(h + a for h in histories)
        longest = max(h + G * a for h in histories)  # a group's row: its history once, then its G actions
    else:  # G whole trajectories per query: one row each, every turn's action trained in place
        longest = w.history(T) + a
        prefill = B * G * sum(w.history(t) for t in range(1, T + 1))
        shared = unshared = B * G * longest
    return StepTokens(B * G * T * a, prefill, shared, unshared, B * (1 + T * G), longest)


def learner_flops(arch: Architecture, tokens: int, *, recompute_old: bool, checkpointing: bool) -> float:
    """Matrix FLOPs of one step's update: 2 per active parameter per token forward, 4 backward,
    another forward for the old log-probs and one for checkpointed recomputation. Attention's
    own FLOPs (score x value) are left out: with 15k-token histories they add about
    4 x layers x q_dim x context / (6 x active params), some 25 % for Qwen3-30B-A3B."""
    forwards = 3 + (1 if recompute_old else 0) + (1 if checkpointing else 0)
    return 2.0 * arch.active_params * tokens * forwards


SIM_BURST_S = 2.0  # how long one turn's burst of simulations may hold up the backbones


def sim_actors_needed(burst: int, sim_seconds: float, window_s: float = SIM_BURST_S) -> int:
    """Actors (one core each) that run one turn's burst of simulations (B x G actions finish
    generating at about the same time, and each backbone's next turn waits for its result)
    within `window_s`. Throughput alone asks for far fewer: a step's simulations spread over its
    generation time."""
    return max(1, math.ceil(burst * sim_seconds / window_s))


@dataclass
class Problem:
    key: str
    message: str


@dataclass
class Plan:
    arch: Architecture
    hardware: Hardware
    workload: Workload
    learner: LearnerMemory
    learner_gpus: int
    engine: EngineMemory | None
    engine_gpus: float
    tokens: StepTokens
    flops_shared: float
    flops_unshared: float
    sim_seconds: float
    generation_s: float  # a step's generation at the assumed decode rate
    sim_actors: int
    sync_bytes: int
    problems: list[Problem] = field(default_factory=list)
