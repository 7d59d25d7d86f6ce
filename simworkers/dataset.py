"""Query datasets on disk: one Parquet file per (split, task), like the paper's 10k training and
100-per-task evaluation queries, so a run never simulates a witness again and anyone can read
the data (`pyarrow.parquet.read_table(path).to_pandas()`).

Layout: `<root>/<split>/<task>.parquet`, root = `TLGRPO_DATA_DIR` or `~/.cache/tl-grpo/data`.
Columns: seed, initial, witness, witness_metrics (maps of name to value) and targets (the spec
targets, in the task's spec order). The file's metadata holds the task's fingerprint and the
query rule; a file built from another version of the task, or by another rule, is refused.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from simworkers.query import QUERY_RULE, Query, Split, seed_for, split_of
from simworkers.task import Task

_VALUES = pa.map_(pa.string(), pa.float64())
SCHEMA = pa.schema(
    [
        ("seed", pa.int64()),
        ("initial", _VALUES),
        ("witness", _VALUES),
        ("witness_metrics", _VALUES),
        ("targets", pa.list_(pa.struct([("metric", pa.string()), ("lo", pa.float64()), ("hi", pa.float64())]))),
    ]
)


class DatasetError(RuntimeError):
    """A dataset that is missing, stale or too small; the message says what to run."""


def data_root() -> Path:
    return Path(os.environ.get("TLGRPO_DATA_DIR") or Path.home() / ".cache" / "tl-grpo" / "data")


def dataset_path(task: Task, split: Split, root: Path | None = None) -> Path:
    return (root or data_root()) / split / f"{task.name}.parquet"


def _metadata(task: Task) -> dict[bytes, bytes]:
    return {b"task": task.name.encode(), b"fingerprint": task.fingerprint.encode(), b"rule": str(QUERY_RULE).encode()}


def write_queries(task: Task, split: Split, queries: list[Query], root: Path | None = None) -> Path:
    """Write atomically (a temporary file renamed into place)."""
    path = dataset_path(task, split, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {
        "seed": [q.seed for q in queries],
        "initial": [list(q.initial.items()) for q in queries],
        "witness": [list(q.witness.items()) for q in queries],
        "witness_metrics": [list(q.witness_metrics.items()) for q in queries],
        "targets": [[{"metric": s.metric, "lo": s.lo, "hi": s.hi} for s in q.specs] for q in queries],
    }
    table = pa.Table.from_pydict(rows, schema=SCHEMA.with_metadata(_metadata(task)))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def stored_count(task: Task, split: Split, root: Path | None = None) -> int:
    """Queries stored for the task and split that can be used as they are (0 if none or stale)."""
    path = dataset_path(task, split, root)
    if not path.is_file():
        return 0
    meta = pq.read_schema(path).metadata or {}
    return pq.read_metadata(path).num_rows if meta == _metadata(task) else 0


def _stale(task: Task, meta: dict[bytes, bytes]) -> str:
    if meta.get(b"rule") != str(QUERY_RULE).encode():
        return f"it was built by query rule {meta.get(b'rule', b'?').decode()}, this version uses {QUERY_RULE}"
    return (
        f"task {task.name} changed since it was built (fingerprint {meta.get(b'fingerprint', b'?').decode()}, "
        f"now {task.fingerprint}: its task file or netlist was edited)"
    )


def read_queries(task: Task, split: Split, root: Path | None = None) -> list[Query]:
    """Every query stored for the task and split; refused when missing or stale."""
    path = dataset_path(task, split, root)
    build = f"tlgrpo data build --tasks {task.name}"
    if not path.is_file():
        raise DatasetError(f"no {split} dataset for task {task.name} at {path}: run `{build}`")
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if meta != _metadata(task):
        raise DatasetError(f"{path} is stale: {_stale(task, meta)}; rebuild it with `{build}`")
    if table.num_rows == 0:
        raise DatasetError(f"{path} holds no queries: run `{build}`")
    by_metric = {s.metric: s for s in task.specs}
    return [
        Query(
            task.name,
            row["seed"],
            split_of(row["seed"]),
            dict(row["initial"]),
            tuple(dataclasses.replace(by_metric[t["metric"]], lo=t["lo"], hi=t["hi"]) for t in row["targets"]),
            dict(row["witness"]),
            dict(row["witness_metrics"]),
        )
        for row in table.to_pylist()
    ]


def pick(task: Task, split: Split, stored: list[Query], count: int, start: int = 0) -> list[Query]:
    """Queries start .. start+count-1 of a stored set: training wraps around it (the next epoch),
    evaluation refuses to ask for more than was built."""
    n = len(stored)
    if split == "eval" and start + count > n:
        raise DatasetError(
            f"the {task.name} evaluation set holds {n} queries, {start + count} were asked for: "
            f"run `tlgrpo data build --tasks {task.name} --eval-queries {start + count}`"
        )
    return [stored[(start + i) % n] for i in range(count)]


def load_queries(task: Task, split: Split, count: int, start: int = 0, root: Path | None = None) -> list[Query]:
    return pick(task, split, read_queries(task, split, root), count, start)


def seeds(split: Split, count: int, start: int = 0) -> list[int]:
    return [seed_for(split, start + i) for i in range(count)]
