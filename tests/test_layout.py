"""The shape of the source tree, read from the files with ``ast`` (nothing is imported): no
import cycle between cnnlab's modules and the layers imported in order only, counting every
import (inside functions and ``TYPE_CHECKING`` blocks too); the library never imports the
command line; no file over 400 lines and no function over 60 outside the command line's
argument tables."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cnnlab"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60

# The layers, lowest first: a module may import from its own layer or a lower one, never a
# higher one. A name is a module or a package (with everything under it, except for the
# root "cnnlab": its face only); the longest name that matches places a module.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # leaves every layer may use: atomic writes, devices, figures, option dataclasses' base,
    # the HTML pieces each result renders itself with in a notebook (_repr_html_)
    ("base", ("cnnlab.version", "cnnlab.io", "cnnlab.device", "cnnlab.figures", "cnnlab.configs", "cnnlab.notebook")),
    ("layers", ("cnnlab.layers",)),
    ("models", ("cnnlab.models",)),
    ("analysis and data", ("cnnlab.analysis", "cnnlab.data")),
    # presets are training and data options together
    ("train", ("cnnlab.train", "cnnlab.presets")),
    ("applications", ("cnnlab.reproduce", "cnnlab.search", "cnnlab.transfer", "cnnlab.interop", "cnnlab.export")),
    ("command line", ("cnnlab.cli",)),
    # the package's face (cnnlab.create_model, cnnlab.summary, ...) and `python -m cnnlab`
    ("top", ("cnnlab", "cnnlab.__main__")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, source: str, is_package: bool = False, top_level_only: bool = False) -> set[str]:
    """The cnnlab modules that the source of module ``name`` imports, wherever the import stands
    (unless ``top_level_only``). ``from pkg import x`` counts as ``pkg.x`` when that is a module,
    else as ``pkg`` -- a package's face, its ``__init__``, whose own imports are its edges."""
    tree = ast.parse(source)
    package = name if is_package else name.rpartition(".")[0]
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


def imports(name: str, path: Path, top_level_only: bool = False) -> set[str]:
    """The cnnlab modules the file ``path`` of module ``name`` imports (see :func:`imported`)."""
    return imported(name, path.read_text(), path.name == "__init__.py", top_level_only)


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def layer_of(module: str) -> int:
    """The index in ``LAYERS`` of the longest name that is ``module`` or a package above it."""
    matches = [
        (len(prefix), i)
        for i, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (prefix != "cnnlab" and module.startswith(prefix + "."))
    ]
    assert matches, f"{module} is in no layer: place it in LAYERS (tests/test_layout.py)"
    return max(matches)[1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
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


def test_the_import_graph_reader_sees_every_import_through_package_faces():
    source = """
from typing import TYPE_CHECKING

from cnnlab.models import create_model
from . import history
from .. import __version__

if TYPE_CHECKING:
    from ..analysis.summary import ModelSummary

def f():
    import cnnlab.data.augment as augment
    from ..io import atomic_write
"""
    everything = imported("cnnlab.train.x", source)
    assert everything == {
        "cnnlab.models",
        "cnnlab.train.history",
        "cnnlab",
        "cnnlab.analysis.summary",
        "cnnlab.data.augment",
        "cnnlab.io",
    }
    top_level = imported("cnnlab.train.x", source, top_level_only=True)
    assert top_level == {"cnnlab.models", "cnnlab.train.history", "cnnlab"}
    # in a package's face, "." is the package itself
    assert imported("cnnlab.train", "from .history import History", is_package=True) == {"cnnlab.train.history"}


def test_no_import_cycle_between_modules():
    """Every import counts, those inside functions and TYPE_CHECKING blocks too: an import put off
    until a call still ties the two modules together."""
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH))


def test_every_module_has_a_layer():
    assert layer_of("cnnlab") == layer_of("cnnlab.__main__") == len(LAYERS) - 1
    assert layer_of("cnnlab.analysis.explain.text") == layer_of("cnnlab.data") < layer_of("cnnlab.train.history")
    with pytest.raises(AssertionError, match="cnnlab.newthing is in no layer"):
        layer_of("cnnlab.newthing")
    for name in MODULES:
        layer_of(name)


def test_modules_import_only_their_own_layer_or_lower_ones():
    upward = sorted(
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {m} ({LAYERS[layer_of(m)][0]})"
        for name, targets in GRAPH.items()
        for m in targets
        if layer_of(m) > layer_of(name)
    )
    assert not upward, "\n".join(upward)


def test_the_notebook_html_pieces_are_a_leaf():
    """Each result renders its own HTML (``_repr_html_``) from these pieces; they know no result type."""
    assert GRAPH["cnnlab.notebook"] <= {"cnnlab.io"}


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
