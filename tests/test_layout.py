"""The shape of the source tree, read from the files with ``ast`` (nothing is imported): no
import cycle between cnnlab's modules, the library never imports the command line, no file
over 400 lines and no function over 60 outside the command line's argument tables."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cnnlab"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, top_level_only: bool = False) -> set[str]:
    """The cnnlab modules ``name`` imports (``from pkg import sub`` counts as ``pkg.sub`` when it is a module)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
    return {m for m in found if m in MODULES and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_reader_sees_cycles_and_relative_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert "cnnlab.train.trainer" in imports("cnnlab.train.pipeline", MODULES["cnnlab.train.pipeline"])
    assert "cnnlab.models" in imports("cnnlab.train.pipeline", MODULES["cnnlab.train.pipeline"])


def test_no_import_cycle_between_modules():
    """Module-level imports: what runs when a module is first imported."""
    graph = {name: imports(name, path, top_level_only=True) for name, path in MODULES.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_library_never_imports_the_command_line():
    offenders = {
        name: sorted(m for m in imports(name, path) if m == "cnnlab.cli" or m.startswith("cnnlab.cli."))
        for name, path in MODULES.items()
        if not (name == "cnnlab.cli" or name.startswith("cnnlab.cli.") or name == "cnnlab.__main__")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_files_and_functions_stay_small(name):
    path = MODULES[name]
    lines = path.read_text().count("\n")
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(SRC)} has {lines} lines"
    long = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            # the command line's argument tables (register) are long lists of add_argument
            exempt = name.startswith("cnnlab.cli") and node.name == "register"
            if length > MAX_FUNCTION_LINES and not exempt:
                long.append(f"{node.name} ({length} lines)")
    assert not long, f"{path.relative_to(SRC)}: {', '.join(long)}"
