"""The task catalogue: every task folder that ships with tl-grpo or lies on TLGRPO_TASK_PATH, found
by name, and the task sets (in-domain, out-of-domain, all) that configs and the CLI name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from simworkers.task import Task
from simworkers.taskfile import TASK_FILE, parse_task_file

BUILTIN_TASKS = Path(__file__).parent / "tasks"
TASK_SETS = ("in-domain", "out-of-domain", "all")


def task_dirs() -> list[Path]:
    """Built-in tasks first, then every folder on TLGRPO_TASK_PATH (os.pathsep separated)."""
    extra = [Path(p) for p in os.environ.get("TLGRPO_TASK_PATH", "").split(os.pathsep) if p]
    return [BUILTIN_TASKS, *extra]


def discover() -> dict[str, Path]:
    """Task name -> task file, for every task folder below the task directories."""
    found: dict[str, Path] = {}
    for root in task_dirs():
        if (root / TASK_FILE).is_file():
            found[root.name] = root / TASK_FILE
            continue
        for task_file in sorted(root.glob(f"*/{TASK_FILE}")):
            found[task_file.parent.name] = task_file
    return found


_CACHE: dict[tuple, Task] = {}
_NETLIST_LINE = re.compile(rb"(?m)^netlist:\s*(\S+)")


def _stamp(path: Path) -> tuple:
    """What a parsed task depends on: its task file and the netlist it names, by content (an
    edited netlist is read again in a long-lived process, however soon after the last read)."""
    text = path.read_bytes()
    found = _NETLIST_LINE.search(text)
    netlist = path.parent / found.group(1).strip(b"'\"").decode() if found else None
    return (str(path.resolve()), text, netlist.read_bytes() if netlist and netlist.is_file() else None)


def load_task(name_or_path: str | Path) -> Task:
    """A task by name (built-in or on TLGRPO_TASK_PATH) or by the path of its folder or file."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / TASK_FILE
    if not path.is_file():
        tasks = discover()
        if str(name_or_path) not in tasks:
            raise KeyError(f"unknown task '{name_or_path}'; known: {', '.join(sorted(tasks))}")
        path = tasks[str(name_or_path)]
    key = _stamp(path)
    if key not in _CACHE:
        _CACHE[key] = parse_task_file(path)
    return _CACHE[key]


def all_tasks() -> list[Task]:
    return [load_task(path) for path in discover().values()]


def resolve_tasks(names: list[str]) -> list[Task]:
    """Task-set names (in-domain, out-of-domain, all) and task names, in order, no repeats."""
    chosen: dict[str, Task] = {}
    for name in names or ["in-domain"]:
        for part in name.split(","):
            part = part.strip()
            if part in TASK_SETS:
                for task in sorted(all_tasks(), key=lambda t: t.name):
                    if part == "all" or task.domain == part.split("-")[0]:
                        chosen.setdefault(task.name, task)
            elif part:
                chosen.setdefault(part, load_task(part))
    return list(chosen.values())
