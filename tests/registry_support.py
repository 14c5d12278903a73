"""A real schema registry for tests: Apicurio Registry (Confluent API) from ../shared/tools/schema-registry.

``running_registry()`` starts one on a free 127.0.0.1 port and stops it at the end; tests are skipped,
not failed, when the registry cannot be built here (no Java or Maven).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOLS = Path(os.environ.get("TRIGGERFISH_SCHEMA_REGISTRY_TOOLS", "/work/shared/tools/schema-registry"))


@dataclass(frozen=True)
class RunningRegistry:
    """A started registry: its Confluent-API URL and the pid file ``stop.sh`` takes."""

    url: str
    pid_file: str


@contextmanager
def running_registry() -> Iterator[RunningRegistry]:
    start = TOOLS / "start.sh"
    if not start.is_file() or shutil.which("java") is None:
        pytest.skip(f"no schema registry here ({start} and java are needed)")
    done = subprocess.run([str(start), "0"], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"schema registry did not start: {done.stderr.strip()[-2000:]}")
    values = dict(shlex.split(line)[0].split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    registry = RunningRegistry(values["SCHEMA_REGISTRY_URL"], values["SCHEMA_REGISTRY_PID_FILE"])
    try:
        yield registry
    finally:
        stop_registry(registry)


def stop_registry(registry: RunningRegistry) -> None:
    """Stop it (again is harmless): for tests of an outage, and at the end."""
    subprocess.run([str(TOOLS / "stop.sh"), registry.pid_file], capture_output=True, timeout=60, check=False)
