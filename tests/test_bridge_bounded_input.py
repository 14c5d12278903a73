"""The bridge's input is bounded: JSON nested 100,000 deep is Strimzi's 400 (as any invalid JSON is), a
record too deep to decode is the poll's 406, and a body over ``http.max.body.bytes`` is refused with
413 in Strimzi's error body while it streams, so a 64 MB POST does not grow the bridge's memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

from triggerfish.bridge.config import MAX_BODY_BYTES, from_properties
from triggerfish.bridge.server import prepare
from triggerfish.errors import ConfigError
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

V2 = "application/vnd.kafka.v2+json"
JSON = "application/vnd.kafka.json.v2+json"
BINARY = "application/vnd.kafka.binary.v2+json"
TEXT = "application/vnd.kafka.text.v2+json"
DEEP = 100_000
MB = 1024 * 1024
LIMIT = 250_000  # the module bridge's http.max.body.bytes: room for the 100,000-deep bodies


class Bridge:
    def __init__(self, props: dict[str, str]) -> None:
        self.prepared = prepare(from_properties({"http.port": "0", "http.management.port": "0", **props}, environ={}))
        self.thread = self.prepared.start_in_thread()
        (h, p), _ = self.prepared.addresses
        self.http = httpx.Client(base_url=f"http://{h}:{p}", timeout=60)

    def close(self) -> None:
        self.http.close()
        self.prepared.stop(self.thread)


@pytest.fixture(scope="module")
def bridge(kafka: KafkaEnv) -> Iterator[Bridge]:
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "kafka.consumer.auto.offset.reset": "earliest",
                "http.max.body.bytes": str(LIMIT)})
    yield b
    b.close()


def deep(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_records(depth: int = DEEP) -> bytes:
    return b'{"records":[{"value":' + deep(depth) + b"}]}"


def assert_invalid_json(response: httpx.Response) -> None:
    """Strimzi's validation 400, exactly as for any other body that is not JSON."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == V2
    body = response.json()
    assert body["error_code"] == 400 and body["message"] == "Validation error on: Schema validation error"
    assert body["validation_errors"] == ["Request body is not valid JSON: JSON nesting depth exceeds the maximum "
                                         "allowed (512)"]


def test_deep_json_is_strimzis_400_on_every_body(bridge: Bridge, make_topic: Callable[..., str],
                                                  unique_name: Callable[[str], str]) -> None:
    topic = make_topic()
    not_json = bridge.http.post(f"/topics/{topic}", content=b"{nope", headers={"content-type": JSON})
    assert not_json.status_code == 400 and not_json.json()["validation_errors"][0].startswith(
        "Request body is not valid JSON: ")
    for ctype in (JSON, BINARY, TEXT):
        for body in (deep(), deep_records()):
            assert_invalid_json(bridge.http.post(f"/topics/{topic}", content=body, headers={"content-type": ctype}))
            assert_invalid_json(bridge.http.post(f"/topics/{topic}/partitions/0", content=body,
                                                 headers={"content-type": ctype}))
    group = unique_name("g")
    assert_invalid_json(bridge.http.post(f"/consumers/{group}", content=deep(), headers={"content-type": V2}))
    assert_invalid_json(bridge.http.post("/admin/topics", content=deep(), headers={"content-type": JSON}))
    created = bridge.http.post(f"/consumers/{group}", json={"name": "c", "format": "json"}, headers={"content-type": V2})
    assert created.status_code == 200, created.text
    instance = f"/consumers/{group}/instances/c"
    for path in ("/subscription", "/assignments", "/offsets", "/positions", "/positions/beginning", "/positions/end"):
        assert_invalid_json(bridge.http.post(instance + path, content=deep(), headers={"content-type": V2}))
    # the bridge still serves: a normal produce goes through
    ok = bridge.http.post(f"/topics/{topic}", json={"records": [{"value": {"k": [1]}}]}, headers={"content-type": JSON})
    assert ok.status_code == 200 and ok.json()["offsets"][0]["offset"] == 0
    assert bridge.http.delete(instance).status_code == 204


def test_a_record_too_deep_to_decode_is_the_polls_406(bridge: Bridge, kafka: KafkaEnv, make_topic: Callable[..., str],
                                                       unique_name: Callable[[str], str]) -> None:
    topic = make_topic()
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    producer.produce(topic, deep(50_000))  # written by another client: the bridge's 400 never saw it
    assert producer.flush(30) == 0
    group = unique_name("g")
    assert bridge.http.post(f"/consumers/{group}", json={"name": "c", "format": "json"},
                            headers={"content-type": V2}).status_code == 200
    instance = f"/consumers/{group}/instances/c"
    assert bridge.http.post(instance + "/subscription", json={"topics": [topic]},
                            headers={"content-type": V2}).status_code == 204
    for _ in range(20):
        r = bridge.http.get(instance + "/records", params={"timeout": 1000}, headers={"accept": JSON})
        if r.status_code != 200 or r.json():
            break
    assert r.status_code == 406, r.text
    assert r.json() == {"error_code": 406, "message": "Failed to decode: JSON nesting depth exceeds the maximum "
                                                      "allowed (512)"}
    bridge.http.delete(instance)


def assert_too_large(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == V2
    assert response.json() == {
        "error_code": 413,
        "message": f"Request Entity Too Large: the body is over the bridge's limit of {limit} bytes; send fewer "
                   "records per request, or raise http.max.body.bytes",
    }


def records_of(size: int) -> bytes:
    head, tail = b'{"records":[{"value":"', b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def chunks(body: bytes, size: int = 16384) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i:i + size]


def test_bodies_over_the_limit_are_413_declared_or_streamed(bridge: Bridge, make_topic: Callable[..., str]) -> None:
    topic = make_topic()
    headers = {"content-type": TEXT}
    assert_too_large(bridge.http.post(f"/topics/{topic}", content=records_of(LIMIT + 1), headers=headers), LIMIT)
    # chunked: no Content-Length to refuse up front, so it is counted as it is read
    assert_too_large(bridge.http.post(f"/topics/{topic}", content=chunks(records_of(3 * LIMIT)), headers=headers), LIMIT)
    assert_too_large(bridge.http.post(f"/topics/{topic}/partitions/0", content=chunks(records_of(LIMIT + 1)),
                                      headers=headers), LIMIT)
    at_limit = bridge.http.post(f"/topics/{topic}", content=chunks(records_of(LIMIT)), headers=headers)
    assert at_limit.status_code == 200 and at_limit.json()["offsets"][0]["offset"] == 0
    metrics = bridge.http.get("/metrics").text  # those read up to the limit are counted as their operation
    assert 'triggerfish_bridge_http_requests_total{operation="send",status="413"} 1.0' in metrics
    assert 'triggerfish_bridge_http_requests_total{operation="sendToPartition",status="413"} 1.0' in metrics


def test_the_limit_is_configurable_and_defaults_to_strimzis_10_mb() -> None:
    kafka = {"kafka.bootstrap.servers": "127.0.0.1:9092"}
    assert from_properties(kafka, environ={}).max_body_bytes == MAX_BODY_BYTES == 10 * MB
    assert from_properties({**kafka, "http.max.body.bytes": "1048576"}, environ={}).max_body_bytes == MB
    assert from_properties(kafka, environ={"http.max.body.bytes": "2048"}).max_body_bytes == 2048
    for bad in ("0", "-1", "ten", "99999999999"):
        with pytest.raises(ConfigError) as info:
            from_properties({**kafka, "http.max.body.bytes": bad}, environ={})
        assert info.value.field == "http.max.body.bytes"


def _memory_mb(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) // 1024 for key in ("VmRSS", "VmHWM")}  # type: ignore[union-attr]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak RSS from /proc")
def test_a_64_mb_post_leaves_the_bridge_process_memory_bounded(kafka: KafkaEnv, make_topic: Callable[..., str],
                                                               tmp_path: Path) -> None:
    topic = make_topic()
    props = tmp_path / "bridge.properties"
    props.write_text(f"kafka.bootstrap.servers={kafka.bootstrap}\nhttp.port=0\nhttp.management.port=-1\n")
    log = tmp_path / "bridge.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "triggerfish", "bridge", "--config-file", str(props)],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "250"})
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        url = f"{found.group(1)}/topics/{topic}"
        before = _memory_mb(proc.pid)
        size = 64 * MB
        body = records_of(size)
        with httpx.Client(timeout=120) as http:
            assert_too_large(http.post(url, content=chunks(body, MB), headers={"content-type": TEXT}), MAX_BODY_BYTES)
            assert_too_large(http.post(url, content=chunks(body, MB), headers={"content-type": TEXT,
                                                                                "content-length": str(size)}),
                             MAX_BODY_BYTES)
            after = _memory_mb(proc.pid)
            assert http.post(url, json={"records": [{"value": "still serving"}]},
                             headers={"content-type": JSON}).status_code == 200
        # the body is read up to the 10 MB limit, never whole (before the limit: +250 MB for one 64 MB POST)
        assert after["VmHWM"] - before["VmHWM"] < 40, (before, after)
    finally:
        proc.terminate()
        proc.wait(30)
