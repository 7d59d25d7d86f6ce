"""Simulation backends: one interface, two ways to run ngspice.

`shared` keeps ngspice's shared library (through PySpice) loaded in a long-lived child process and
changes only the parameters between designs; `batch` runs `ngspice -b` once per design. Both
validate first, enforce a wall-clock limit by killing the process, and parse output the same way.
"""

from __future__ import annotations

from typing import Literal

from simworkers.backends.base import Backend
from simworkers.backends.batch import BatchBackend
from simworkers.backends.shared import SharedBackend

BackendName = Literal["shared", "batch"]
BACKENDS: dict[BackendName, type[Backend]] = {"shared": SharedBackend, "batch": BatchBackend}


def make_backend(name: str = "shared", **kwargs) -> Backend:
    try:
        return BACKENDS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown simulation backend '{name}'; use one of {', '.join(BACKENDS)}") from None


__all__ = ["BACKENDS", "Backend", "BackendName", "BatchBackend", "SharedBackend", "make_backend"]
