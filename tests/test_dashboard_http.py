"""The dashboard over plain HTTP: the page and its assets (self-contained, locked down by CSP), the
state document (mappings with their PROBLEM and stages, lag history, function counts, failures sent to
destinations), and the control API's SigV4 requirement applied to the document."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard_support import DashStack, kafka_mapping, signed_get
from esm_helpers import produce, wait_until
from triggerfish.api.app import create_app
from triggerfish.api.engine import EngineBackend
from triggerfish.api.server import ApiServer
from triggerfish.api.sigv4 import AccessKey
from triggerfish.functions.runtime import FunctionRuntime

KEY = AccessKey("AKIDDASHBOARD", "dashboard-secret-do-not-show")


@pytest.fixture
def bare() -> Iterator[str]:
    """The API app with no engine and no functions."""
    server = ApiServer(create_app(EngineBackend(FunctionRuntime([]))), port=0)
    yield server.start()
    server.stop()


def test_page_is_a_shell_with_our_own_assets_only(bare: str) -> None:
    page = httpx.get(bare + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'data-auth="none"' in page.text
    # one script of ours, no inline code, nothing from another origin
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/dashboard/static/dashboard.js" defer>']
    assert "<style" not in page.text and " style=" not in page.text
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    for name, kind in [("dashboard.js", "text/javascript"), ("dashboard.css", "text/css"), ("icon.svg", "image/svg+xml")]:
        asset = httpx.get(f"{bare}/dashboard/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind), name
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", asset.text), f"{name} names another site"
    script = httpx.get(bare + "/dashboard/static/dashboard.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, f"the script uses {sink}"
    assert httpx.get(bare + "/dashboard/static/nope.js").status_code == 404
    assert httpx.get(bare + "/dashboard/static/..%2Fapp.py").status_code == 404


def test_document_without_engine(bare: str) -> None:
    body = httpx.get(bare + "/dashboard/state.json").json()
    assert body["Version"] == 1 and body["LagSpanSeconds"] == 3600
    assert body["Mappings"] == [] and body["Functions"] == [] and body["Cluster"] is None
    assert isinstance(body["Failures"], list)


def test_document_requires_the_api_signature_when_the_api_does(tmp_path: Path) -> None:
    server = ApiServer(create_app(EngineBackend(FunctionRuntime([])), access_key=KEY), port=0)
    url = server.start()
    try:
        page = httpx.get(url + "/")
        assert page.status_code == 200 and 'data-auth="sigv4"' in page.text
        assert KEY.secret_access_key not in page.text and KEY.access_key_id not in page.text
        unsigned = httpx.get(url + "/dashboard/state.json")
        assert unsigned.status_code == 403
        assert unsigned.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationToken")
        wrong = signed_get(url + "/dashboard/state.json", KEY.access_key_id, "not-the-secret")
        assert wrong.status_code == 403 and KEY.secret_access_key not in wrong.text
        good = signed_get(url + "/dashboard/state.json", KEY.access_key_id, KEY.secret_access_key)
        assert good.status_code == 200 and good.json()["Version"] == 1
    finally:
        server.stop()


@pytest.mark.kafka
def test_document_shows_mappings_problems_lag_functions_and_failures(kafka: Any, make_topic: Callable[..., str],
                                                                    tmp_path: Path) -> None:
    stack = DashStack(tmp_path)
    try:
        topic, dlq = make_topic(partitions=2), make_topic()
        quiet = stack.client.create_event_source_mapping(**kafka_mapping(topic, kafka.bootstrap, Enabled=False))["UUID"]
        missing = stack.client.create_event_source_mapping(**kafka_mapping("<b", kafka.bootstrap))["UUID"]
        failing = stack.client.create_event_source_mapping(**kafka_mapping(
            make_topic(), kafka.bootstrap, "boom", MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}}))["UUID"]

        # a disabled mapping: its backlog still shows, read from Kafka
        produce(kafka.bootstrap, topic, [b"x"] * 6, partition=0)
        produce(kafka.bootstrap, topic, [b"y"] * 4, partition=1)
        wait_until(lambda: {(s["Partition"], s["Samples"][-1][1]) for s in stack.mapping(quiet)["Lag"] if s["Samples"]}
                   == {(0, 6), (1, 4)}, message="lag of the disabled mapping sampled")
        shown = stack.mapping(quiet)
        assert shown["State"] == "Disabled" and shown["Enabled"] is False
        assert shown["FunctionName"] == "rec" and shown["Topics"] == [topic]
        assert shown["LastProcessingResult"] == "No records processed" and shown["Problem"] is None

        # a PROBLEM with its stage, detail and fix, and the setup stages with durations
        problem = wait_until(lambda: stack.mapping(missing)["Problem"], message="PROBLEM of a missing topic")
        assert stack.mapping(missing)["LastProcessingResult"].startswith("PROBLEM:")
        assert problem["Text"] == stack.mapping(missing)["LastProcessingResult"]
        assert problem["Stage"] and problem["Fix"] and "<b" in problem["Detail"]
        stages = stack.mapping(missing)["Stages"]
        assert any(s["Status"] == "fail" and s["Stage"] == problem["Stage"] for s in stages)
        assert all(isinstance(s["DurationMs"], (int, float)) for s in stages if s["Status"] == "ok")

        # a failing function: its record goes to the on-failure destination, with condition and offsets
        produce(kafka.bootstrap, stack.mapping(failing)["Topics"][0], [b"poison"])
        sent = wait_until(lambda: [f for f in stack.state()["Failures"] if f["MappingUUID"] == failing],
                          message="failure recorded")
        assert sent[0]["Destination"] == f"kafka://{dlq}" and sent[0]["Condition"] == "RetryAttemptsExhausted"
        assert sent[0]["Offsets"] == [{"Topic": stack.mapping(failing)["Topics"][0], "Partition": 0,
                                       "FirstOffset": 0, "LastOffset": 0, "Records": 1}]
        boom = [f for f in stack.state()["Functions"] if f["FunctionName"] == "boom"][0]
        assert boom["Invocations"] >= 1 and boom["Errors"] >= 1 and boom["Duration"]["P50Ms"] is not None
        assert "<img src=x onerror=alert(1)>" in stack.mapping(failing)["Problem"]["Detail"]

        # enabled: the engine's own lag takes over and falls to 0
        stack.client.update_event_source_mapping(UUID=quiet, Enabled=True)
        wait_until(lambda: [s["Samples"][-1][1] for s in stack.mapping(quiet)["Lag"]] == [0, 0],
                   message="lag back to 0 once enabled")
        rec = [f for f in stack.state()["Functions"] if f["FunctionName"] == "rec"][0]
        assert rec["MappingRecordsInvoked"] >= 10 and rec["Errors"] == 0
        assert [p["Lag"] for p in stack.mapping(quiet)["Partitions"]] == [0, 0]
    finally:
        stack.stop()
