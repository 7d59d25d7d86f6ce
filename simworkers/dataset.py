"""Query datasets and trade-off fronts on disk, in Parquet: like the paper's 10k training and
100-per-task evaluation queries, so a run never simulates a witness again and anyone can read
the data (`pyarrow.parquet.read_table(path).to_pandas()`).

Layout under root = `TLGRPO_DATA_DIR` or `~/.cache/tl-grpo/data`:
- `<rule>/<split>/<task>.parquet`: queries. Columns: seed, initial, witness, witness_metrics
  (maps of name to value) and targets (the spec targets, in the task's spec order).
- `fronts/<task>.parquet`: every design sampled for the task's trade-off front (simworkers/
  front.py). Columns: origin, design, metrics (null when it did not simulate), on_front, cell,
  split.
A built-in task ships its front beside its task file (`front.parquet`, the same format): it is
read when the data folder holds no fresh one, so nobody simulates a thousand designs a task
before a first run, and every user draws the same witnesses. `tlgrpo data build` writes a new
front to the data folder when the shipped one is stale (the task file or netlist changed).
Each file's metadata holds the task's fingerprint (and the query rule and its version); a file
built from another version of the task, or by another rule, is refused as stale.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simworkers.front import Front, design_key
from simworkers.query import DEFAULT_RULE, QUERY_RULES, Query, QueryRule, Split, seed_for, split_of
from simworkers.result import SimResult
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


FRONT_SCHEMA = pa.schema(
    [
        ("origin", pa.string()),  # sample, refine, reference or centre
        ("design", _VALUES),
        ("metrics", _VALUES),  # null: the design did not simulate
        ("on_front", pa.bool_()),
        ("cell", pa.int32()),  # -1 off the front
        ("split", pa.string()),  # train, eval, or empty off the front
    ]
)


class DatasetError(RuntimeError):
    """A dataset that is missing, stale or too small; the message says what to run."""


def data_root() -> Path:
    return Path(os.environ.get("TLGRPO_DATA_DIR") or Path.home() / ".cache" / "tl-grpo" / "data")


def dataset_path(task: Task, split: Split, root: Path | None = None, rule: QueryRule = DEFAULT_RULE) -> Path:
    return (root or data_root()) / rule / split / f"{task.name}.parquet"


def front_path(task: Task, root: Path | None = None) -> Path:
    return (root or data_root()) / "fronts" / f"{task.name}.parquet"


def shipped_front_path(task: Task) -> Path | None:
    """Where a task ships its front: beside its task file."""
    return Path(task.path).with_name("front.parquet") if task.path else None


def _front_paths(task: Task, root: Path | None) -> list[Path]:
    """Where a front may be, the data folder's first."""
    shipped = shipped_front_path(task)
    return [front_path(task, root)] + ([shipped] if shipped else [])


def build_command(task: Task, rule: QueryRule = DEFAULT_RULE) -> str:
    return f"tlgrpo data build --tasks {task.name}" + ("" if rule == DEFAULT_RULE else f" --rule {rule}")


def _metadata(task: Task, rule: QueryRule | None) -> dict[bytes, bytes]:
    meta = {b"task": task.name.encode(), b"fingerprint": task.fingerprint.encode()}
    if rule is not None:
        meta.update({b"rule": rule.encode(), b"rule_version": str(QUERY_RULES[rule]).encode()})
    return meta


def _write(table: pa.Table, path: Path) -> Path:
    """Atomically: a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def write_queries(
    task: Task, split: Split, queries: list[Query], root: Path | None = None, rule: QueryRule = DEFAULT_RULE
) -> Path:
    path = dataset_path(task, split, root, rule)
    rows = {
        "seed": [q.seed for q in queries],
        "initial": [list(q.initial.items()) for q in queries],
        "witness": [list(q.witness.items()) for q in queries],
        "witness_metrics": [list(q.witness_metrics.items()) for q in queries],
        "targets": [[{"metric": s.metric, "lo": s.lo, "hi": s.hi} for s in q.specs] for q in queries],
    }
    return _write(pa.Table.from_pydict(rows, schema=SCHEMA.with_metadata(_metadata(task, rule))), path)


def stored_count(task: Task, split: Split, root: Path | None = None, rule: QueryRule = DEFAULT_RULE) -> int:
    """Queries stored for the task and split that can be used as they are (0 if none or stale)."""
    path = dataset_path(task, split, root, rule)
    if not path.is_file():
        return 0
    meta = pq.read_schema(path).metadata or {}
    return pq.read_metadata(path).num_rows if meta == _metadata(task, rule) else 0


def _stale(task: Task, meta: dict[bytes, bytes], rule: QueryRule | None) -> str:
    if rule is not None and (meta.get(b"rule"), meta.get(b"rule_version")) != (
        rule.encode(),
        str(QUERY_RULES[rule]).encode(),
    ):
        built = f"{meta.get(b'rule', b'?').decode()} version {meta.get(b'rule_version', b'?').decode()}"
        return f"it was built by query rule {built}, this version's {rule} rule is version {QUERY_RULES[rule]}"
    return (
        f"task {task.name} changed since it was built (fingerprint {meta.get(b'fingerprint', b'?').decode()}, "
        f"now {task.fingerprint}: its task file or netlist was edited)"
    )


def read_queries(task: Task, split: Split, root: Path | None = None, rule: QueryRule = DEFAULT_RULE) -> list[Query]:
    """Every query stored for the task and split; refused when missing or stale."""
    path = dataset_path(task, split, root, rule)
    build = build_command(task, rule)
    if not path.is_file():
        raise DatasetError(f"no {split} dataset ({rule} rule) for task {task.name} at {path}: run `{build}`")
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if meta != _metadata(task, rule):
        raise DatasetError(f"{path} is stale: {_stale(task, meta, rule)}; rebuild it with `{build}`")
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


def pick(
    task: Task, split: Split, stored: list[Query], count: int, start: int = 0, rule: QueryRule = DEFAULT_RULE
) -> list[Query]:
    """Queries start .. start+count-1 of a stored set: training wraps around it (the next epoch),
    evaluation refuses to ask for more than was built."""
    n = len(stored)
    if split == "eval" and start + count > n:
        raise DatasetError(
            f"the {task.name} evaluation set holds {n} queries, {start + count} were asked for: "
            f"run `{build_command(task, rule)} --eval-queries {start + count}`"
        )
    return [stored[(start + i) % n] for i in range(count)]


def load_queries(
    task: Task, split: Split, count: int, start: int = 0, root: Path | None = None, rule: QueryRule = DEFAULT_RULE
) -> list[Query]:
    return pick(task, split, read_queries(task, split, root, rule), count, start, rule)


def write_front(task: Task, front: Front, root: Path | None = None) -> Path:
    rows = {
        "origin": front.origin,
        "design": [list(d.items()) for d in front.designs],
        "metrics": [list(m.items()) if m is not None else None for m in front.metrics],
        "on_front": [bool(x) for x in front.on_front],
        "cell": [int(x) for x in front.cell],
        "split": front.split,
    }
    meta = {**_metadata(task, None), b"sim_fingerprint": task.sim_fingerprint.encode()}
    table = pa.Table.from_pydict(rows, schema=FRONT_SCHEMA.with_metadata(meta))
    return _write(table, front_path(task, root))


def _front_meta(path: Path) -> dict[bytes, bytes]:
    meta = dict(pq.read_schema(path).metadata or {})
    meta.pop(b"sim_fingerprint", None)
    return meta


def stored_results(task: Task, root: Path | None = None) -> dict[tuple, SimResult]:
    """The simulations of a stored front, stale or not, when they came from the same circuit,
    process, testbench and parameters as the task has now (only its specs or front settings
    changed): design -> result, for `build_front` to reuse. Empty otherwise."""
    same = [
        p
        for p in _front_paths(task, root)
        if p.is_file() and (pq.read_schema(p).metadata or {}).get(b"sim_fingerprint") == task.sim_fingerprint.encode()
    ]
    if not same:
        return {}
    path = same[0]
    cols = pq.read_table(path, columns=["design", "metrics"]).to_pydict()
    return {
        design_key(dict(d)): SimResult("ok", dict(m)) if m is not None else SimResult("failed", {}, "failed before")
        for d, m in zip(cols["design"], cols["metrics"])
    }


def fresh_front_path(task: Task, root: Path | None = None) -> Path | None:
    """The front a run reads: the data folder's when fresh, else the one shipped beside the task
    file when fresh; None when neither is."""
    return next((p for p in _front_paths(task, root) if p.is_file() and _front_meta(p) == _metadata(task, None)), None)


def front_is_fresh(task: Task, root: Path | None = None) -> bool:
    return fresh_front_path(task, root) is not None


def read_front(task: Task, root: Path | None = None) -> Front:
    """The task's front (`fresh_front_path`); refused when missing or stale (its task file or
    netlist changed since it was built)."""
    path = fresh_front_path(task, root)
    if path is None:
        found = [p for p in _front_paths(task, root) if p.is_file()]
        if not found:
            where = " or ".join(str(p) for p in _front_paths(task, root))
            raise DatasetError(f"no trade-off front for task {task.name} at {where}: run `{build_command(task)}`")
        meta = _front_meta(found[0])
        raise DatasetError(f"{found[0]} is stale: {_stale(task, meta, None)}; rebuild it with `{build_command(task)}`")
    cols = pq.read_table(path).to_pydict()
    return Front(
        task.name,
        task.fingerprint,
        [dict(d) for d in cols["design"]],
        [dict(m) if m is not None else None for m in cols["metrics"]],
        list(cols["origin"]),
        np.array(cols["on_front"], dtype=bool),
        np.array(cols["cell"], dtype=int),
        list(cols["split"]),
    )


def seeds(split: Split, count: int, start: int = 0) -> list[int]:
    return [seed_for(split, start + i) for i in range(count)]
