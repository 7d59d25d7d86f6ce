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


def data_dir_from_store() -> None:
    """TLGRPO_DATA_DIR given as a URI (a bucket's datasets and fronts): read once into this node's
    cache (wire/storage.py), and the variable pointed there, for every reader of the data folder."""
    from wire.storage import is_uri, local_copy

    uri = os.environ.get("TLGRPO_DATA_DIR")
    if is_uri(uri):
        os.environ["TLGRPO_DATA_DIR"] = local_copy(uri)
        print(f"datasets: {uri}, read into {os.environ['TLGRPO_DATA_DIR']}", flush=True)


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
