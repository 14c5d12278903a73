"""Compile ``.proto`` text into ``FileDescriptorProto``s with protoc (the one grpcio-tools ships).

Registries do not all keep Protobuf schemas in one form: Confluent's answers with a base64
``FileDescriptorProto`` when asked for ``format=serialized``, while AWS Glue (and Apicurio, for schemas
registered as text) give the ``.proto`` text. Python's protobuf runtime has no ``.proto`` parser, so the
text goes to protoc: written into a private temporary directory under its import paths, compiled with
``--include_imports --descriptor_set_out``, the descriptor set read back. protoc runs in a child
process (``python -m grpc_tools.protoc``) so its error lines can be read; once per schema, about 0.1 s.
Google's well-known types (``google/protobuf/timestamp.proto``, ...) come from grpcio-tools' includes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from triggerfish.schemas.errors import require

#: Seconds protoc may take for one schema (it takes about 0.1 s).
TIMEOUT_S = 30.0


class ProtoCompileError(ValueError):
    """The ``.proto`` text does not compile; the message is protoc's first error line."""


def compile_proto(files: Sequence[tuple[str, str]], known: Sequence[Any] = ()) -> list[Any]:
    """The ``FileDescriptorProto`` of each ``(import path, .proto text)`` and of what they import, each after
    its imports. ``known`` are ``FileDescriptorProto``s the texts may import that are already compiled."""
    grpc_tools = require("grpc_tools")
    descriptor_pb2 = require("google.protobuf.descriptor_pb2")
    includes = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="triggerfish-protoc-") as tmp:  # mode 0700
        root = Path(tmp) / "src"
        for name, text in files:
            path = root / _relative(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        out = Path(tmp) / "out.pb"
        args = [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"-I{includes}", "--include_imports",
                f"--descriptor_set_out={out}"]
        if known:
            given = Path(tmp) / "known.pb"
            given.write_bytes(descriptor_pb2.FileDescriptorSet(file=list(known)).SerializeToString())
            args.append(f"--descriptor_set_in={given}")
        args += [str(_relative(name)) for name, _ in files]
        try:
            done = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ProtoCompileError(f"protoc took over {TIMEOUT_S:.0f} s") from None
        if done.returncode != 0 or not out.exists():
            lines = [line for line in done.stderr.replace(f"{root}/", "").splitlines() if line.strip()]
            raise ProtoCompileError(lines[0][:300] if lines else f"protoc exited with {done.returncode}")
        return list(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file)


def _relative(name: str) -> PurePosixPath:
    """An import path as a path inside the temporary directory (never outside it)."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or "\0" in name:
        raise ProtoCompileError(f"{name!r} is not a relative import path (a reference's name must be one)")
    return path
