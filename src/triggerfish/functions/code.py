"""A function's code as GetFunction describes it: ``CodeSha256`` and ``CodeSize`` of its ``CodeUri``.

Lambda hashes the deployment package; triggerfish runs a directory, so the digest is SHA-256 over the
directory's files in path order (each file's relative POSIX path, a NUL, its size, a NUL, its bytes),
base64-encoded as Lambda shows it. It depends on the content only — not on mtimes, the directory's
location or the order the file system lists it — so every replica with the same code shows the same
value. Python's bytecode caches (``__pycache__``, ``*.pyc``) are left out: importing the code writes them.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_CHUNK = 1 << 20


def _files(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
        for name in names:
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = Path(directory, name)
            if path.is_file():
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def code_digest(root: Path | None) -> tuple[str, int]:
    """``(CodeSha256, CodeSize)`` of a code directory; an HTTP function (no directory) has no code."""
    digest = hashlib.sha256()
    size = 0
    for relative, path in _files(root) if root is not None else []:
        length = path.stat().st_size
        digest.update(relative.encode() + b"\0" + str(length).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        size += length
    return base64.b64encode(digest.digest()).decode("ascii"), size
