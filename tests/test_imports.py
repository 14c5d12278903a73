"""triggerfish's own modules import each other at the top of the module, and without cycles.

Read from the source with ``ast`` (nothing is imported): an edge A -> B for every
``import``/``from ... import`` of B in A (``if TYPE_CHECKING:`` blocks do not count: they never run),
B being the most specific triggerfish module named (``from triggerfish.api import sigv4`` is an edge to
``triggerfish.api.sigv4``). No cycles among modules nor among the parts (``esm``, ``functions``, ...),
and no imports of triggerfish's own modules inside functions (optional third-party ones may stay lazy).
The package top's lazy names (``triggerfish.__getattr__``) are looked up on first use, not imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "triggerfish"

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


# Parsed once, at collection, before any test runs: in Python 3.11 the ast module keeps its recursion
# bookkeeping per interpreter, so an ast.parse racing another thread's (the traceback module parses
# source lines to place its carets, e.g. when a lingering engine thread logs an exception) fails with
# "SystemError: AST constructor recursion depth mismatch".
_TREES: dict[str, ast.Module] = {m: ast.parse(p.read_text(), str(p)) for m, p in MODULES.items()}
_PROBE_SOURCE = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from triggerfish import app\n"
                 "from . import errors\n\ndef f():\n    from triggerfish.esm import engine\n")
_PROBE_TREE = ast.parse(_PROBE_SOURCE)


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The triggerfish modules an import statement in ``module`` names."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                yield alias.name
        return
    if node.level:  # relative: from the importing module's package
        base = module.split(".") if _is_package(module) else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    if target.split(".")[0] != PACKAGE:
        return
    for alias in node.names:
        submodule = f"{target}.{alias.name}"
        yield submodule if submodule in MODULES else target


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, tree: ast.Module | None = None) -> tuple[set[str], set[tuple[str, int]]]:
    """(modules imported at module level, (module, line) imported inside a function or class)."""
    top: set[str] = set()
    nested: set[tuple[str, int]] = set()

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for orelse in child.orelse:
                    visit(orelse, inside)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _resolve(module, child):
                    if inside:
                        nested.add((target, child.lineno))
                    else:
                        top.add(target)
            visit(child, inside or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))

    visit(tree or _TREES[module], False)
    top.discard(module)
    return top, nested


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the triggerfish modules it imports, at the top or inside functions (a lazy import still
    ties the two modules together: the esm <-> functions cycle was one)."""
    graph = {}
    for module in MODULES:
        top, nested = _imports(module)
        graph[module] = {t for t in top | {t for t, _ in nested} if t in MODULES and t != module}
    return graph


def _part(module: str) -> str:
    """``triggerfish.esm.runner`` -> ``triggerfish.esm``: the part of the project a module belongs to."""
    return ".".join(module.split(".")[:2])


def _describe(cycles: list[list[str]], graph: dict[str, set[str]]) -> str:
    return "\n".join(" <-> ".join(c) + ": " + "; ".join(f"{a} imports {b}" for a in c for b in sorted(graph[a] & set(c)))
                     for c in cycles)


def test_no_import_cycles_among_triggerfish_modules() -> None:
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, f"import cycles:\n{_describe(cycles, graph)}"


def test_no_import_cycles_among_the_parts() -> None:
    # esm, functions, api, bridge, doctor, ...: a part may use another, not also be used by it.
    parts: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        parts.setdefault(_part(module), set()).update(
            _part(t) for t in targets if _part(t) not in (_part(module), PACKAGE))  # the package top is every part's parent
    cycles = _cycles(parts)
    assert not cycles, f"import cycles between parts:\n{_describe(cycles, parts)}"


def test_no_in_function_imports_of_triggerfish_modules() -> None:
    found: dict[tuple[str, str], list[int]] = {}
    for module in MODULES:
        for target, line in _imports(module)[1]:
            found.setdefault((module, target), []).append(line)
    assert not found, "import these at the top of the module instead:\n" + "\n".join(
        f"{MODULES[m].relative_to(SRC)}:{min(lines)} imports {t} inside a function" for (m, t), lines in sorted(found.items()))


def test_the_checks_see_cycles_and_nested_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checks above pass only if they can fail: a two-module cycle and a nested import are found.
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    top, nested = _imports("triggerfish.cli.run")
    assert "triggerfish.app" in top and not nested
    module = tmp_path / PACKAGE / "probe.py"
    module.parent.mkdir()
    module.write_text(_PROBE_SOURCE)
    monkeypatch.setitem(MODULES, "triggerfish.probe", module)
    assert _imports("triggerfish.probe", _PROBE_TREE) == ({"triggerfish.errors"}, {("triggerfish.esm.engine", 7)})
