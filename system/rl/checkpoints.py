"""The checkpoint folder: `step_NNNNNN/` holds the learner's distributed checkpoint and
`trainer.json` (step, weights version, seed, the steps trained); `latest` names the newest.

A checkpoint is written under a `.tmp` name and renamed when complete, then `latest` is replaced
atomically: a run killed while writing leaves the previous checkpoint as the latest.
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


class Checkpoints:
    def __init__(self, root: Path, keep: int):
        self.root, self.keep = root, keep

    def latest(self) -> Path | None:
        pointer = self.root / "latest"
        if not pointer.exists():
            return None
        path = self.root / pointer.read_text().strip()
        return path if (path / "trainer.json").exists() else None

    def resume_point(self, resume: bool, out_dir: Path) -> Path | None:
        """The checkpoint a run continues from: the latest with `resume`, none without; a run
        without `resume` is refused where a checkpoint already is, rather than overwrite it."""
        latest = self.latest()
        if latest is not None and not resume:
            raise ConfigError(
                f"run.out_dir {out_dir} already holds checkpoint {latest.name}: "
                "pass --resume to continue it, or choose another run.out_dir"
            )
        return latest if resume else None

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
