"""A run folder on a path or on object storage (`run.out_dir` an s3://, gs://, file:// URI).

On a path nothing changes: every file is written where it belongs. On a URI the driver writes
its files (config.yaml, metrics.jsonl, evaluations, episodes, curves, W&B files) into a mirror on
its own disk and copies what changed to the store at the end of every step (`push`); what other
processes write goes straight to the store: the learner ranks' checkpoint shards
(system/rl/checkpoints.py) and the exported models (`final/`, `warmup/final/`). A resumed run
first empties its mirror and reads the store's files back (`prepare`), so a new machine resumes
a run that another one started. Models on the store are read through each node's cache
(wire/storage.py's local_copy).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from wire.storage import cache_root, download, filesystem, is_uri, join, store_call, upload

# read from the store where needed, never mirrored: checkpoints and exported model folders
NOT_MIRRORED = ("checkpoints", "final", "base_model")


class RunFolder:
    def __init__(self, out_dir: str | Path):
        self.uri = str(out_dir).rstrip("/") if is_uri(out_dir) else None
        if self.uri:
            key = hashlib.sha256(self.uri.encode()).hexdigest()[:16]
            self.local = cache_root() / "runs" / f"{self.uri.rsplit('/', 1)[-1]}-{key}"
        else:
            self.local = Path(out_dir).resolve()
        self._pushed: dict[str, tuple[int, int]] = {}

    @property
    def name(self) -> str:
        return self.uri or str(self.local)

    def target(self, *parts: str) -> str:
        """Where a process other than the driver writes or reads `parts`: the store, or the path."""
        return join(self.uri, *parts) if self.uri else str(self.local.joinpath(*parts))

    def exists(self, *parts: str) -> bool:
        if not self.uri:
            return self.local.joinpath(*parts).exists()
        fs, path = filesystem(self.uri)
        return store_call(self.uri, "reading", lambda: fs.exists(join(path, *parts)))

    def prepare(self, pull: bool) -> None:
        """A URI's mirror emptied (another run's files never leak in), then, for a resumed run,
        the store's files read back: metrics, evaluations, the W&B folder, the warm-up's records."""
        if not self.uri:
            return
        shutil.rmtree(self.local, ignore_errors=True)
        self.local.mkdir(parents=True)
        self._pushed.clear()
        if not pull:
            return
        fs, path = filesystem(self.uri)
        for name in store_call(self.uri, "listing", lambda: fs.find(path)):
            relative = name[len(path) :].lstrip("/")
            if any(part in NOT_MIRRORED for part in relative.split("/")):
                continue
            download(join(self.uri, relative), self.local / relative)
            self._seen(self.local / relative, relative)

    def _seen(self, file: Path, relative: str) -> bool:
        """Whether `file` is as last copied; it is recorded as copied from here on."""
        stat = file.stat()
        same = self._pushed.get(relative) == (stat.st_size, stat.st_mtime_ns)
        self._pushed[relative] = (stat.st_size, stat.st_mtime_ns)
        return same

    def push(self) -> int:
        """The mirror's new and changed files copied to the store; returns how many."""
        if not self.uri:
            return 0
        copied = 0
        for file in sorted(p for p in self.local.rglob("*") if p.is_file()):
            relative = file.relative_to(self.local).as_posix()
            if any(part in NOT_MIRRORED for part in relative.split("/")):
                continue  # on the store already, written there or published whole
            if self._seen(file, relative):
                continue
            upload(file, join(self.uri, relative))
            copied += 1
        return copied

    def model_path(self, model, seed: int) -> str:
        """The run's starting model (system/models' policy_model_path). The tiny model is built in
        the folder; on a URI it is then put on the store, where every node reads it."""
        from system.models import policy_model_path

        path = policy_model_path(model, self.local, seed)
        if not self.uri or path != str(self.local / "base_model"):
            return path
        target = join(self.uri, "base_model")
        if not self.exists("base_model", "config.json"):
            upload(self.local / "base_model", target)
        return target
