"""What every command shares: the one-line user error, task lookup, the console, argument types."""

from __future__ import annotations

import argparse
import sys

from simworkers.backends import BACKENDS


class CliError(Exception):
    """A bad argument or input: printed as one line, exit status 2."""


BACKEND_NAMES = list(BACKENDS)


def tasks_named(names: list[str] | None):
    """Task names or sets (in-domain, out-of-domain, all); none: every task."""
    from simworkers.catalog import all_tasks, resolve_tasks

    if not names:
        return sorted(all_tasks(), key=lambda t: (t.domain, t.name))
    try:
        return resolve_tasks(names)
    except KeyError as exc:
        raise CliError(exc.args[0]) from None


def console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def budget_list(text: str) -> list[int]:
    try:
        budgets = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not budgets or min(budgets) < 1:
        raise argparse.ArgumentTypeError(f"budgets must be integers >= 1: {text!r}")
    return budgets


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is not at least {low}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def probability(text: str) -> float:
    """A number in (0, 1], e.g. a top-p."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in (0, 1]")
    return value
