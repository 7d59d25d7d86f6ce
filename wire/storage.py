"""Where a run's files live when its folder is a URI (`s3://`, `gs://`, `file://`, any fsspec
protocol) rather than a path: the filesystem behind a URI, a folder copied up or down, and a
node-local cache for what every process on a node reads (a model folder).

Credentials come only from each store's own client (AWS_* variables and ~/.aws for s3fs,
GOOGLE_APPLICATION_CREDENTIALS for gcsfs): nothing here reads, prints or writes them. A refused or
missing credential is raised as StorageError with one line naming the URI and what failed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path


class StorageError(RuntimeError):
    """A store could not be reached, refused the credentials, or lacks what was asked for."""


def is_uri(path: str | os.PathLike | None) -> bool:
    return path is not None and "://" in str(path)


def filesystem(uri: str):
    """(fsspec filesystem, path inside it) for a URI; one line naming the URI when the protocol's
    client is missing (`pip install s3fs` / `gcsfs`)."""
    from fsspec.core import url_to_fs

    try:
        return url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise StorageError(f"{uri}: no filesystem for it ({exc})") from None


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def store_call(uri: str, what: str, call):
    """Run one store operation; a refused or missing credential (botocore's NoCredentialsError,
    an access denied) or an unreachable store becomes one line naming the URI."""
    try:
        return call()
    except FileNotFoundError:
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise StorageError(f"{uri}: {what} failed ({type(exc).__name__}: {reason})") from None


def upload(local: str | os.PathLike, uri: str) -> None:
    """A local file or folder copied to the store (a folder: every file under it)."""
    fs, path = filesystem(uri)
    source = Path(local)
    if source.is_dir():
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            target = f"{path}/{file.relative_to(source).as_posix()}"
            store_call(uri, f"writing {target}", lambda f=file, t=target: fs.put_file(str(f), t))
    else:
        store_call(uri, "writing", lambda: fs.put_file(str(source), path))


def download(uri: str, local: str | os.PathLike) -> bool:
    """Every file under a store folder (or the one file) copied to `local`; False when it is not there."""
    fs, path = filesystem(uri)
    if not store_call(uri, "reading", lambda: fs.exists(path)):
        return False
    target = Path(local)
    if store_call(uri, "reading", lambda: fs.isdir(path)):
        for name in store_call(uri, "listing", lambda: fs.find(path)):
            relative = name[len(path) :].lstrip("/")
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            store_call(uri, f"reading {name}", lambda n=name, r=relative: fs.get_file(n, str(target / r)))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        store_call(uri, "reading", lambda: fs.get_file(path, str(target)))
    return True


def cache_root() -> Path:
    return Path(os.environ.get("TLGRPO_STORE_CACHE") or Path.home() / ".cache" / "tl-grpo" / "store")


def local_copy(uri: str, timeout_s: float = 3600.0) -> str:
    """A store folder (a model) fetched once into this node's cache, which every process on the
    node shares: the first takes a lock and downloads into a temporary folder, checks each file's
    size against the store, and renames it into place; the others wait for it. A plain path is
    returned as it is."""
    if not is_uri(uri):
        return str(uri)
    fs, path = filesystem(uri)
    key = hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
    final = cache_root() / f"{Path(path).name}-{key}"
    sizes = {
        name[len(path) :].lstrip("/"): int(info.get("size") or 0)
        for name, info in store_call(uri, "listing", lambda: fs.find(path, detail=True)).items()
    }
    if not sizes:
        raise StorageError(f"{uri}: nothing there")

    def complete() -> bool:
        return all((final / name).is_file() and (final / name).stat().st_size == size for name, size in sizes.items())

    if complete():
        return str(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = final.parent / f"{final.name}.lock"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:  # another process on this node is fetching it
            if complete():
                return str(final)
            try:
                stale = time.time() - lock.stat().st_mtime > timeout_s
            except FileNotFoundError:  # its owner just finished or gave up: look again
                continue
            if stale or time.monotonic() > deadline:
                lock.unlink(missing_ok=True)  # its owner died: take over
            time.sleep(0.5)
    try:
        os.close(fd)
        if not complete():
            partial = final.parent / f"{final.name}.partial-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            download(uri, partial)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
            if not complete():
                raise StorageError(f"{uri}: the copy in {final} does not match the store's sizes")
        return str(final)
    finally:
        lock.unlink(missing_ok=True)
