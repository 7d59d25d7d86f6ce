"""The layers of docs/design.md hold: every import in every module (inside functions and under
TYPE_CHECKING too) is read from the source and checked against what its package may import,
and the modules import one another without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = ("system", "actors", "learner", "simworkers", "wire")

# Top-level packages: what each may import besides itself.
ALLOWED = {
    "wire": set(),
    "simworkers": set(),
    "actors": {"wire"},
    "learner": {"wire"},
    "system": {"wire", "simworkers", "actors", "learner"},
}
# Inside system: each layer may import its own and the lower ones.
SYSTEM_LAYERS = ["runtime", "agent", "config", "models", "evaluation", "rl", "bench", "plan", "soak", "cli"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, module, names imported from it) for every import anywhere in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module
            if node.level:  # relative: resolve against the importing package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            found.append((node.lineno, module, tuple(alias.name for alias in node.names)))
    return found


def sources() -> list[Path]:
    return sorted(p for top in TOP for p in (ROOT / top).rglob("*.py"))


def system_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "system" or len(parts) < 2:
        return None
    return SYSTEM_LAYERS.index(parts[1]) if parts[1] in SYSTEM_LAYERS else None


def violations(path: Path) -> list[str]:
    me = module_name(path)
    top = me.split(".")[0]
    out = []
    for line, target, _ in imports(path):
        other = target.split(".")[0]
        if other not in TOP or (other == top and top != "system"):
            continue
        where = f"{path.relative_to(ROOT)}:{line} imports {target}"
        if other != top and other not in ALLOWED[top]:
            out.append(f"{where}: {top} may import only {sorted(ALLOWED[top]) or 'none of the others'}")
        if top == "system" and other == "system":
            mine, theirs = system_layer(me), system_layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                out.append(f"{where}: system.{SYSTEM_LAYERS[mine]} sits below system.{SYSTEM_LAYERS[theirs]}")
    return out


def test_every_module_belongs_to_a_system_layer():
    for path in (ROOT / "system").rglob("*.py"):
        name = module_name(path)
        assert name == "system" or system_layer(name) is not None, f"{name}: add it to a layer of system/__init__.py"


def test_layers_hold():
    problems = [v for path in sources() for v in violations(path)]
    assert not problems, "\n".join(problems)


def test_no_import_cycles():
    modules = {module_name(p): p for p in sources()}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for _, target, names in imports(path):
            # `from a import b` is an edge to the module a.b when there is one, else to a
            for dep in [f"{target}.{n}" if f"{target}.{n}" in modules else target for n in names] or [target]:
                if dep in modules and dep != name:
                    edges.add(dep)
        graph[name] = edges
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_check_catches_a_learner_importing_actors(tmp_path, monkeypatch):
    """The rule is live: a learner module that imports actors inside a function is refused."""
    bad = ROOT / "learner" / "_layer_probe.py"
    bad.write_text("def f():\n    import actors.rollout\n")
    try:
        assert any("learner may import only ['wire']" in v for v in violations(bad))
    finally:
        bad.unlink()
