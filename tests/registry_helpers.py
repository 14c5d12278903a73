"""The real schema registry for tests: Apicurio Registry (Confluent API at /apis/ccompat/v7), started with
the shared tools' start.sh on a free 127.0.0.1 port and stopped at the end.

    schema_registry            session fixture: the URL of one registry for the whole run
    running_registry()         a registry of a test's own (to stop it: an outage), as ``RunningRegistry``
    stop_registry(registry)    stop it (again is harmless)
    pipe(a, b)                 copy one socket into another (the fronts tests put before the registry)

The tools are found like CI finds them: ``../shared/tools/schema-registry`` next to the clone (or next
to any directory above it), or ``$SCHEMA_REGISTRY_TOOLS``. Missing tools fail the tests: CI builds them.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def tools_dir() -> Path | None:
    env = os.environ.get("SCHEMA_REGISTRY_TOOLS")
    if env:
        return Path(env)
    for parent in REPO.parents:
        candidate = parent / "shared" / "tools" / "schema-registry"
        if (candidate / "start.sh").exists():
            return candidate
    return None


@dataclass(frozen=True)
class RunningRegistry:
    """A started registry: its Confluent-API URL and the pid file ``stop.sh`` takes."""

    url: str
    pid_file: str


def _tools() -> Path:
    tools = tools_dir()
    if tools is None:
        pytest.fail("the schema registry tools are missing: expected ../shared/tools/schema-registry next to the "
                    "clone, or set SCHEMA_REGISTRY_TOOLS")
    return tools


@contextmanager
def running_registry() -> Iterator[RunningRegistry]:
    done = subprocess.run([str(_tools() / "start.sh"), "0"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"start.sh failed: {done.stderr[-2000:]}"
    values = dict(shlex.split(line)[0].split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    registry = RunningRegistry(values["SCHEMA_REGISTRY_URL"], values["SCHEMA_REGISTRY_PID_FILE"])
    try:
        yield registry
    finally:
        stop_registry(registry)


def stop_registry(registry: RunningRegistry) -> None:
    """Stop it (again is harmless): for tests of an outage, and at the end."""
    subprocess.run([str(_tools() / "stop.sh"), registry.pid_file], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def schema_registry() -> Iterator[str]:
    """The URL of a running registry (``http://127.0.0.1:PORT/apis/ccompat/v7``)."""
    with running_registry() as registry:
        yield registry.url


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy what ``a`` receives to ``b`` until either closes, then shut both (run one per direction)."""
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
