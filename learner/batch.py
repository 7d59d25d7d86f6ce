"""The learner's view of a training batch: the columns of the wire schema (wire/batch.py) that
training needs, as numpy arrays per sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch


@dataclass
class TrainingBatch:
    ids: list[np.ndarray]
    mask: list[np.ndarray]
    advantages: list[np.ndarray]
    engine_logprobs: list[np.ndarray]  # NaN off the mask and where the engine gave none
    bounds: list[list[int]]  # per row: [prefix_end, end_1, ..., len] (wire/batch.py)

    @classmethod
    def from_arrow(cls, batch: pa.RecordBatch) -> TrainingBatch:
        def split(name: str, dtype) -> list[np.ndarray]:
            col = batch.column(name)
            offsets = col.offsets.to_numpy()
            values = col.values.to_numpy(zero_copy_only=False).astype(dtype)
            return [values[offsets[i] : offsets[i + 1]] for i in range(len(col))]

        old = batch.column("old_logprobs")
        offsets = old.offsets.to_numpy()
        values = old.values.fill_null(float("nan")).to_numpy(zero_copy_only=False).astype(np.float32)
        engine = [values[offsets[i] : offsets[i + 1]] for i in range(len(old))]
        bounds = batch.column("bounds").to_pylist()
        return cls(
            split("input_ids", np.int64), split("loss_mask", bool), split("advantages", np.float32), engine, bounds
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]

    def action_tokens(self, rows) -> int:
        return int(sum(self.mask[i].sum() for i in rows))

    def field(self, name: str, rows: tuple[int, ...]) -> torch.Tensor:
        parts = [getattr(self, name)[i] for i in rows]
        return torch.from_numpy(np.concatenate(parts)) if parts else torch.zeros(1)
