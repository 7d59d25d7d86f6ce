"""The checkpoint folder: `step_NNNNNN/` holds the learner's distributed checkpoint and
`trainer.json` (step, weights version, seed, the steps trained).

On a disk (`Checkpoints`) a checkpoint is written under a `.tmp` name and renamed when complete,
then `latest` is replaced atomically: a run killed while writing leaves the previous checkpoint as
the latest. An object store has no rename (`StoreCheckpoints`, a run folder on a URI): every
learner rank writes its shard straight to `step_NNNNNN/learner` (torch distributed checkpoint's
fsspec writer), then `trainer.json`, then a `COMPLETE` marker last. The latest checkpoint is the
newest with its marker; one without (an upload cut off) is never taken, and is removed with a line
saying so.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from system.config import ConfigError


@dataclass
class TrainerState:
    step: int  # steps trained so far: the next batch to train is batch `step`
    version: int  # weights version (one per update)
    seed: int
    trained: list[int] = field(default_factory=list)  # batch indices trained, in order
    skipped: list[int] = field(default_factory=list)  # batches with no learning signal


class _Folder:
    def resume_point(self, resume: bool, out_dir):
        """The checkpoint a run continues from: the latest with `resume`, none without; a run
        without `resume` is refused where a checkpoint already is, rather than overwrite it."""
        latest = self.latest()
        if latest is not None and not resume:
            raise ConfigError(
                f"run.out_dir {out_dir} already holds checkpoint {self.label(latest)}: "
                "pass --resume to continue it, or choose another run.out_dir"
            )
        return latest if resume else None


class Checkpoints(_Folder):
    def __init__(self, root: Path, keep: int):
        self.root, self.keep = root, keep

    def learner_dir(self, checkpoint: Path) -> str:
        return str(checkpoint / "learner")

    def label(self, checkpoint: Path) -> str:
        return checkpoint.name

    def latest(self) -> Path | None:
        pointer = self.root / "latest"
        if not pointer.exists():
            return None
        path = self.root / pointer.read_text().strip()
        return path if (path / "trainer.json").exists() else None

    def load_state(self, path: Path) -> TrainerState:
        return TrainerState(**json.loads((path / "trainer.json").read_text()))

    def save(self, state: TrainerState, write_learner: Callable[[str], None]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"step_{state.step:06d}"
        tmp = self.root / f"step_{state.step:06d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write_learner(str((tmp / "learner").resolve()))
        (tmp / "trainer.json").write_text(json.dumps(asdict(state), indent=1))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = self.root / "latest.tmp"
        pointer.write_text(final.name)
        os.replace(pointer, self.root / "latest")
        self._prune()
        return final

    def _prune(self) -> None:
        for stale in self.root.glob("*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        done = sorted(p for p in self.root.glob("step_*") if p.is_dir())
        for old in done[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)


class StoreCheckpoints(_Folder):
    """The same folder on an object store (`root` a URI); checkpoints are named by URI."""

    MARKER = "COMPLETE"

    def __init__(self, root: str, keep: int):
        from wire.storage import filesystem

        self.root, self.keep = root.rstrip("/"), keep
        self.fs, self.path = filesystem(self.root)

    def _steps(self) -> list[str]:
        from wire.storage import store_call

        self.fs.invalidate_cache()  # the ranks wrote through their own clients: no stale listing
        try:
            names = store_call(self.root, "listing", lambda: self.fs.ls(self.path, detail=False))
        except FileNotFoundError:  # no checkpoint yet
            return []
        names = (n.rstrip("/").rsplit("/", 1)[1] for n in names)
        return sorted(n for n in names if n.startswith("step_"))

    def _complete(self, name: str) -> bool:
        return self.fs.exists(f"{self.path}/{name}/{self.MARKER}")

    def latest(self) -> str | None:
        steps = self._steps()
        for name in reversed(steps):
            if self._complete(name):
                return f"{self.root}/{name}"
            # written after the newest complete one and never finished: an upload cut off
            cut = f"checkpoint {self.root}/{name} has no {self.MARKER} marker (its upload was cut off)"
            print(f"{cut}: removed, not resumed from", flush=True)
            self.fs.rm(f"{self.path}/{name}", recursive=True)
        return None

    def learner_dir(self, checkpoint: str) -> str:
        return f"{checkpoint}/learner"

    def label(self, checkpoint: str) -> str:
        return checkpoint.rsplit("/", 1)[1]

    def load_state(self, checkpoint: str) -> TrainerState:
        with self.fs.open(f"{self.path}/{self.label(checkpoint)}/trainer.json") as f:
            return TrainerState(**json.loads(f.read()))

    def save(self, state: TrainerState, write_learner: Callable[[str], None]) -> str:
        name = f"step_{state.step:06d}"
        folder = f"{self.path}/{name}"
        if self.fs.exists(folder):  # a cut-off attempt at the same step, or one being redone
            self.fs.rm(folder, recursive=True)
        write_learner(f"{self.root}/{name}/learner")
        self.fs.pipe_file(f"{folder}/trainer.json", json.dumps(asdict(state), indent=1).encode())
        self.fs.pipe_file(f"{folder}/{self.MARKER}", name.encode())  # last: the checkpoint is whole
        done = [n for n in self._steps() if self._complete(n)]
        for old in done[: -self.keep]:
            self.fs.rm(f"{self.path}/{old}", recursive=True)
        return f"{self.root}/{name}"


def checkpoints_for(out_dir: str | Path, keep: int) -> Checkpoints | StoreCheckpoints:
    from wire.storage import is_uri

    if is_uri(out_dir):
        return StoreCheckpoints(f"{str(out_dir).rstrip('/')}/checkpoints", keep)
    return Checkpoints(Path(out_dir) / "checkpoints", keep)
