"""The training batch on the wire: one Arrow RecordBatch from the buffer (system/rl/buffer.py) to
every learner rank (learner/batch.py reads it). This schema is its only definition.

One row per training unit: a sample (a history plus one action for turn-level plans, a whole
trajectory for trajectory-level ones), or a group whose samples share a prefix: the prefix once,
then each sample's own tokens as a branch. Per-token columns have one entry per token of
`input_ids`; per-branch columns one entry per branch.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA = pa.schema(
    [
        pa.field("input_ids", pa.list_(pa.int32())),  # the row's tokens, exactly as sampled (see `bounds`)
        pa.field("loss_mask", pa.list_(pa.bool_())),  # True on tokens the policy produced and is trained on
        pa.field("advantages", pa.list_(pa.float32())),  # per token; 0 where loss_mask is False
        pa.field("old_logprobs", pa.list_(pa.float32())),  # the engine's log-prob per token, null off the mask
        # [prefix_end, end_1, ..., end_n = len(input_ids)]: a prefix [0, prefix_end) shared by n
        # branches [prefix_end, end_1), [end_1, end_2), ...; each branch continues the prefix, none
        # sees another. [0, len] for a row that is one sample.
        pa.field("bounds", pa.list_(pa.int32())),
        pa.field("task", pa.string()),  # circuit task name
        pa.field("query_seed", pa.int64()),  # with task, identifies the query
        pa.field("group_id", pa.int64()),  # samples sharing a starting point
        pa.field("algorithm", pa.string()),  # tl_grpo | traj_grpo | single_turn | gtpo | sft
        # one entry per branch:
        pa.field("turn", pa.list_(pa.int16())),  # 1-based turn of the action (0 for whole trajectories)
        pa.field("reward", pa.list_(pa.float32())),  # training reward (score minus format penalty)
        pa.field("score", pa.list_(pa.float32())),  # evaluation score of the action's design
        pa.field("format_ok", pa.list_(pa.bool_())),
        pa.field("policy_version", pa.list_(pa.int32())),  # weights version that sampled the action
    ]
)
