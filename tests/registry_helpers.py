"""The real schema registry for tests: Apicurio Registry (Confluent API at /apis/ccompat/v7), started once
per session with the shared tools' start.sh on a free port and stopped at the end.

The tools are found like CI finds them: ``../shared/tools/schema-registry`` next to the clone (or next
to any directory above it), or ``$SCHEMA_REGISTRY_TOOLS``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def schema_registry() -> Iterator[str]:
    """The URL of a running registry (``http://127.0.0.1:PORT/apis/ccompat/v7``)."""
    tools = tools_dir()
    if tools is None:
        pytest.fail("the schema registry tools are missing: expected ../shared/tools/schema-registry next to the "
                    "clone, or set SCHEMA_REGISTRY_TOOLS")
    out = subprocess.run([str(tools / "start.sh"), "0"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"start.sh failed: {out.stderr[-2000:]}"
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    try:
        yield env["SCHEMA_REGISTRY_URL"].strip("'\"")
    finally:
        subprocess.run([str(tools / "stop.sh"), env["SCHEMA_REGISTRY_PID_FILE"].strip("'\"")], capture_output=True,
                       timeout=60)
