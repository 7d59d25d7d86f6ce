"""The `tlgrpo` command line: the parser and the entry point. Commands live by group in
`circuits` (tasks, simulate, pdk), `runs` (eval, train, sft, demo, report), `learning` (learn-test),
`bench`, `plan` and `soak`."""

from __future__ import annotations

import argparse
import sys

from simworkers.dataset import DatasetError
from simworkers.pdk import PdkError
from simworkers.query import QueryError
from simworkers.task import TaskError
from system.agent.endpoint import EndpointError
from system.cli import bench, circuits, demo, learning, models, plan, runs, soak
from system.cli.common import BACKEND_NAMES, CliError
from system.config import ConfigError
from system.models.install import ModelError
from system.runtime import apply_defaults, data_dir_from_store
from wire.storage import StorageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tlgrpo", description="Turn-level GRPO for circuit sizing")
    sub = parser.add_subparsers(dest="command", required=True)
    circuits.add_commands(sub)
    bench.add_commands(sub)
    runs.add_commands(sub)
    learning.add_commands(sub)
    demo.add_commands(sub)
    models.add_commands(sub)
    plan.add_commands(sub)
    soak.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    args = build_parser().parse_args(argv)
    if args.command == "bench" and args.action == "sim":
        args.backend = args.backend or BACKEND_NAMES
    try:
        data_dir_from_store()
        return args.func(args)
    except (
        CliError,
        TaskError,
        PdkError,
        ConfigError,
        EndpointError,
        ModelError,
        DatasetError,
        QueryError,
        StorageError,
    ) as exc:
        print(f"tlgrpo: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
