"""The bridge refuses what a browser sends cross-site, over real HTTP in front of the real broker:
a ``Host`` that does not name it (DNS rebinding), an ``Origin`` its CORS settings do not allow, and a
``text/plain`` write; configured names and origins pass."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from triggerfish.bridge.config import from_properties
from triggerfish.bridge.server import prepare
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

JSON = "application/vnd.kafka.json.v2+json"


class _Bridge:
    def __init__(self, props: dict[str, str]) -> None:
        self.prepared = prepare(from_properties({"http.port": "0", "http.management.port": "0", **props}, environ={}))
        self.thread = self.prepared.start_in_thread()
        (h, p), (_, mp) = self.prepared.addresses
        self.port = p
        self.url, self.management = f"http://{h}:{p}", f"http://{h}:{mp}"

    def close(self) -> None:
        self.prepared.stop(self.thread)


@pytest.fixture
def bridge(kafka: KafkaEnv) -> Iterator[_Bridge]:
    b = _Bridge({"kafka.bootstrap.servers": kafka.bootstrap})
    yield b
    b.close()


def _records(topic_value: str) -> bytes:
    return json.dumps({"records": [{"value": topic_value}]}).encode()


def test_the_browser_attack_is_refused(bridge: _Bridge, make_topic) -> None:
    topic = make_topic()
    url = f"{bridge.url}/topics/{topic}"
    evil = {"content-type": "text/plain", "origin": "http://evil.example", "host": "evil.example"}
    refused = httpx.post(url, content=_records("x"), headers=evil)
    assert refused.status_code == 403
    assert refused.json()["error_code"] == 403 and "http.allowedHosts" in refused.json()["message"]
    # the right Host, a page on another site
    refused = httpx.post(url, content=_records("x"), headers={"content-type": JSON, "origin": "http://evil.example"})
    assert refused.status_code == 403 and "http.cors.allowedOrigins" in refused.json()["message"]
    # no Origin (not a browser), but a body type a form sends: Strimzi's content types are required
    refused = httpx.post(url, content=_records("x"), headers={"content-type": "text/plain"})
    assert refused.status_code == 400 and "format of the request body is not supported" in refused.json()["message"]
    # the management port too
    assert httpx.get(bridge.management + "/metrics", headers={"host": "evil.example"}).status_code == 403
    # what clients send passes
    for host in (f"127.0.0.1:{bridge.port}", f"localhost:{bridge.port}", f"[::1]:{bridge.port}"):
        assert httpx.get(bridge.url + "/topics", headers={"host": host}).status_code == 200, host
    ok = httpx.post(url, content=_records("x"), headers={"content-type": JSON})
    assert ok.status_code == 200, ok.text
    assert ok.json()["offsets"][0]["offset"] == 0  # only the one good write reached Kafka


def test_configured_hosts_and_cors_origins_pass(kafka: KafkaEnv) -> None:
    b = _Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "http.allowedHosts": "bridge.kafka.svc, other",
                 "http.cors.enabled": "true", "http.cors.allowedOrigins": r"https://app\.example"})
    try:
        assert httpx.get(b.url + "/topics", headers={"host": "bridge.kafka.svc:8080"}).status_code == 200
        assert httpx.get(b.url + "/topics", headers={"host": "evil.example"}).status_code == 403
        ok = httpx.get(b.url + "/topics", headers={"origin": "https://app.example"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
        assert httpx.get(b.url + "/topics", headers={"origin": "https://app.example.evil"}).status_code == 403
    finally:
        b.close()
