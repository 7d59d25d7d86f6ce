"""The training batch on the wire: one Arrow RecordBatch from the buffer (system/rl/buffer.py) to
every learner rank (learner/batch.py reads it). This schema is its only definition.

One row per training sample: a history plus one action for turn-level plans, a whole trajectory
for trajectory-level ones. Per-token columns have one entry per token of `input_ids`.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA = pa.schema(
    [
        pa.field("input_ids", pa.list_(pa.int32())),  # prompt/history and action tokens, exactly as sampled
        pa.field("loss_mask", pa.list_(pa.bool_())),  # True on tokens the policy produced and is trained on
        pa.field("advantages", pa.list_(pa.float32())),  # per token; 0 where loss_mask is False
        pa.field("old_logprobs", pa.list_(pa.float32())),  # the engine's log-prob per token, null off the mask
        pa.field("task", pa.string()),  # circuit task name
        pa.field("query_seed", pa.int64()),  # with task, identifies the query
        pa.field("turn", pa.int16()),  # 1-based turn of the action (0 for whole trajectories)
        pa.field("group_id", pa.int64()),  # samples sharing a starting point
        pa.field("reward", pa.float32()),  # training reward (score minus format penalty)
        pa.field("score", pa.float32()),  # evaluation score of the action's design
        pa.field("format_ok", pa.bool_()),
        pa.field("policy_version", pa.int32()),  # weights version that sampled the action
        pa.field("algorithm", pa.string()),  # tl_grpo | traj_grpo | single_turn | gtpo | sft
    ]
)
