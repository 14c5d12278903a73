"""The public API: what ``triggerfish.__all__`` promises resolves, ``App`` starts and stops its parts
in order, and the README's embedding example runs as printed against the real broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import triggerfish
from esm_helpers import function_config, write_handler
from triggerfish import App, SetupError
from triggerfish.esm.store import Store

README = Path(__file__).resolve().parent.parent / "README.md"

ORDERS = """
def handler(event, context):
    return {"seen": sum(len(records) for records in event["records"].values())}
"""


def embedding_example() -> str:
    """The first Python block under README's "Embedding the engine" heading."""
    text = README.read_text()
    section = text[text.index("### Embedding the engine"):]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "README: no python block under 'Embedding the engine'"
    return found.group(1)


def test_every_public_name_resolves() -> None:
    for name in triggerfish.__all__:
        assert getattr(triggerfish, name) is not None, name
    assert set(triggerfish.__all__) <= set(dir(triggerfish))
    with pytest.raises(AttributeError):
        triggerfish.Engine  # noqa: B018 - internal, not part of the API
    assert issubclass(triggerfish.ConfigError, triggerfish.TriggerfishError)


def test_a_worker_process_does_not_import_the_engine_or_the_http_server() -> None:
    # Every handler's worker imports the triggerfish package: it must stay as light as the worker.
    code = ("import sys, triggerfish.functions.worker; "
            "print(sorted(m for m in ('triggerfish.app', 'triggerfish.esm.engine', 'confluent_kafka', 'uvicorn', "
            "'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.kafka
def test_readme_embedding_example_runs(kafka, make_topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = embedding_example()
    topic = make_topic()
    # The example's own topic and broker, swapped for this test's: everything else runs as printed.
    assert '"Topics": ["orders"]' in code and '["127.0.0.1:9092"]' in code
    code = code.replace('"Topics": ["orders"]', f'"Topics": ["{topic}"]')
    code = code.replace('["127.0.0.1:9092"]', f'["{kafka.bootstrap}"]')
    write_handler(tmp_path, "orders", ORDERS).rename(tmp_path / "functions")
    monkeypatch.chdir(tmp_path)

    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md (Embedding the engine)", "exec"), namespace)

    app, view, result = namespace["app"], namespace["view"], namespace["result"]
    assert result.ok and result.result() == {"seen": 0}
    assert f"control API on {app.url}" in capsys.readouterr().out
    assert app.url.startswith("http://127.0.0.1:")
    with pytest.raises(httpx.TransportError):  # stopped when the block was left
        httpx.get(f"{app.url}/health", timeout=2)
    store = Store(tmp_path / ".triggerfish" / "state.db")
    try:
        [row] = store.mappings()
        assert row["uuid"] == view.uuid and row["config"]["Topics"] == [topic]
        assert store.get("engine") is None  # the App recorded itself while running, and cleared it
    finally:
        store.close()
    assert app.engine.get(view.uuid).config.batch_size == 500


def _workers() -> set[int]:
    """This process's live worker processes (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"triggerfish.functions.worker" in cmdline:
            found.add(int(stat.parent.name))
    return found


def test_app_undoes_what_it_started_when_the_api_cannot_listen(tmp_path: Path) -> None:
    code = write_handler(tmp_path, "rec", ORDERS)
    fn = function_config(code, "rec.handler", name="f")
    with App([fn], [], state=tmp_path / "state.db", port=0) as first:
        assert first.url is not None
        port = int(first.url.rsplit(":", 1)[1])
        workers = _workers()
        assert len(workers) == 1  # the first App's warm worker
        second = App([fn], [], state=tmp_path / "other.db", port=port)
        with pytest.raises(SetupError, match=f"cannot listen on 127.0.0.1:{port}"):
            second.start()
        assert _workers() == workers  # the second App's runtime was closed again
        assert first.runtime.invoke("f", b'{"records": {}}').ok
    assert _workers() == set()
    with second:  # not left half-started: it starts once the port is free
        assert second.url == f"http://127.0.0.1:{port}"
        assert second.runtime.invoke("f", b'{"records": {}}').result() == {"seen": 0}
    assert _workers() == set()
