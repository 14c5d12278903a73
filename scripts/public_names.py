"""List module-level public names in src/triggerfish that no other file uses: candidates for a leading
underscore ("the rest private by name", issue 13).

    .venv/bin/python scripts/public_names.py [src/triggerfish/esm/filter.py ...]

A name counts as used when another file under src/, tests/, bench/, scripts/ or examples/ imports it (``from m import name``)
or reaches it as an attribute of the imported module (``m.name``), or when README.md mentions
``m.name``. Read the list before renaming: Typer commands take their name from the function, and a
``Handler:`` in YAML names a function by string.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def defined(tree: ast.Module) -> list[tuple[str, int]]:
    """Public names bound at module level: functions, classes, assignments."""
    names: list[tuple[str, int]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append((node.name, node.lineno))
        elif isinstance(node, ast.Assign):
            names += [(t.id, node.lineno) for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append((node.target.id, node.lineno))
    return [(n, line) for n, line in names if not n.startswith("_")]


def used(path: Path, tree: ast.Module) -> set[tuple[str, str, Path]]:
    """(module, name, user) for every ``from module import name`` and ``module.name`` in a file."""
    found: set[tuple[str, str, Path]] = set()
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                found.add((node.module, alias.name, path))
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain: list[str] = []
            value: ast.expr = node
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in aliases:
                parts = [*aliases[value.id].split("."), *reversed(chain)]
                found.update((".".join(parts[:i]), parts[i], path) for i in range(1, len(parts)))
    return found


def main(only: list[str]) -> None:
    files = [p for d in ("src", "tests", "bench", "scripts", "examples") for p in sorted((ROOT / d).rglob("*.py"))]
    trees = {p: ast.parse(p.read_text(), str(p)) for p in files}
    uses: set[tuple[str, str, Path]] = set()
    for path, tree in trees.items():
        uses |= used(path, tree)
    readme = (ROOT / "README.md").read_text()
    wanted = {Path(o).resolve() for o in only}
    for path, tree in trees.items():
        if not path.is_relative_to(SRC / "triggerfish") or (wanted and path not in wanted):
            continue
        module = module_name(path)
        for name, line in defined(tree):
            outside = {u for m, n, u in uses if m == module and n == name and u != path}
            if not outside and f"{module}.{name}" not in readme:
                print(f"{path.relative_to(ROOT)}:{line}: {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
