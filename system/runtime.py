"""The process around every entry point: environment defaults set before Ray, PySpice or W&B
start, and the one way to start or join Ray.

`RAY_ADDRESS` set (a job submitted with `ray job submit`, or a user's cluster): join that cluster.
Otherwise start a local one sized for the job, with a small object store (two local nodes would
each claim a large one).
"""

from __future__ import annotations

import os

DEFAULTS = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "HF_HUB_OFFLINE": "1",
}


def apply_defaults() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    # W&B stays offline unless the user configured a key.
    if "WANDB_API_KEY" not in os.environ:
        os.environ.setdefault("WANDB_MODE", "offline")


def init_ray(cpus_needed: int = 0, object_store_mb: int = 512) -> None:
    """Join the cluster named by RAY_ADDRESS, or start a local one with at least `cpus_needed`
    logical CPUs (phases alternate, so logical CPUs may exceed cores). No-op when Ray is up."""
    import ray

    if ray.is_initialized():
        return
    apply_defaults()
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)
        return
    ray.init(
        address="local",
        num_cpus=max(cpus_needed, os.cpu_count() or 1),
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=object_store_mb * 2**20,
    )


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def actor_runtime_env(python: str | None, threads: int | None = None, field: str = "rollout.python") -> dict | None:
    """Ray's runtime_env for actors that run under another interpreter (`python`, absolute or
    relative to the repository root), with this repository importable there, and whose every
    thread starts with `threads` OpenMP threads; None for the trainer's own interpreter and Ray's
    default threads. The interpreter needs the same Ray version as the trainer's.

    The thread count matters for the vLLM engine on CPU: it plans its attention kernels with one
    thread's OpenMP count and runs them on another thread (its executor's), which starts with
    OMP_NUM_THREADS; Ray sets that to the actor's CPUs, so an actor given more threads than CPUs
    failed its first batch ("thread_num == thread_num (1 vs. 2)") unless the variable says so."""
    from system.config import ConfigError

    if python is None and threads is None:
        return None
    env: dict = {"env_vars": {}}
    if threads is not None:
        env["env_vars"]["OMP_NUM_THREADS"] = str(threads)
    if python is not None:
        path = python if os.path.isabs(python) else os.path.join(REPO_ROOT, python)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ConfigError(
                f"{field}: {python!r} is not an executable interpreter (looked at {path}). Fix: run "
                "scripts/setup.sh, which builds .venv-vllm, or set it to null to use the trainer's own"
            )
        env["py_executable"] = path
        env["env_vars"]["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
    return env
