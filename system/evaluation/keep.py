"""The small outputs of a comparison, kept where they can be committed: a session may end on a
lost machine, and `tlgrpo report` must still be able to rebuild every table from what was kept.

Copies each training run's metrics, wall times and held-out evaluations, each evaluation's
settings, results and episodes (gzipped), and the warm-up's loss, summary and weights' digest;
never a checkpoint, a model folder or a training log. Copying again replaces what changed, so it
can run after every finished stage.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

EVAL_FILES = ("eval.json", "results.json", "results.md")


def keep_small_outputs(root: Path, dest: Path) -> list[Path]:
    """Copies what `tlgrpo report` reads from `root` into `dest`; returns the files written.
    An evaluation still running (no results.json yet) is left out whole."""
    written: list[Path] = []
    dest.mkdir(parents=True, exist_ok=True)
    for metrics in sorted(root.glob("*-s*/metrics.jsonl")):
        if (metrics.parent / "final" / "config.json").exists():  # finished runs only
            written.append(_copy(metrics, dest / metrics.parent.name / metrics.name))
            wall = root / f"{metrics.parent.name}.time"
            if wall.exists():
                written.append(_copy(wall, dest / wall.name))
            for result in sorted(metrics.parent.glob("eval/step_*/results.*")):  # its held-out curve
                if result.suffix in (".json", ".md"):
                    written.append(_copy(result, dest / result.relative_to(root)))
    for folder in sorted(p for p in root.glob("eval-*") if (p / "results.json").exists()):
        for name in EVAL_FILES:
            if (folder / name).exists():
                written.append(_copy(folder / name, dest / folder.name / name))
        episodes = folder / "episodes.jsonl"
        if episodes.exists():
            target = dest / folder.name / "episodes.jsonl.gz"
            # mtime=0: the same episodes give the same bytes, so an unchanged folder is no change to commit
            target.write_bytes(gzip.compress(episodes.read_bytes(), mtime=0))
            written.append(target)
        elif (folder / "episodes.jsonl.gz").exists():  # a kept folder copied back (BO and random from another)
            written.append(_copy(folder / "episodes.jsonl.gz", dest / folder.name / "episodes.jsonl.gz"))
    # the warm-up's loss curve and summary, and its weights' digest: a grid that outlives its machine
    # redoes the warm-up, and its later runs start from the same one only if the digest matches
    for name in ("warmup/sft_metrics.jsonl", "warmup.log", "warmup/weights.sha256"):
        if (root / name).exists():
            written.append(_copy(root / name, dest / name))
    return written


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
