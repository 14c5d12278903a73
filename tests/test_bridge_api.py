"""The bridge's HTTP API end to end: a real bridge (uvicorn, in a thread) in front of the real broker."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from triggerfish.bridge.config import from_properties
from triggerfish.bridge.server import prepare
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

V2 = "application/vnd.kafka.v2+json"
JSON = "application/vnd.kafka.json.v2+json"
BINARY = "application/vnd.kafka.binary.v2+json"
TEXT = "application/vnd.kafka.text.v2+json"


class Bridge:
    def __init__(self, props: dict[str, str]) -> None:
        self.prepared = prepare(from_properties({"http.port": "0", "http.management.port": "0", **props}, environ={}))
        self.thread = self.prepared.start_in_thread()
        (h, p), (_, mp) = self.prepared.addresses
        self.url = f"http://{h}:{p}"
        self.management = f"http://{h}:{mp}"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        self.http.close()
        self.prepared.stop(self.thread)


@pytest.fixture(scope="module")
def bridge(kafka: KafkaEnv) -> Iterator[Bridge]:
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "kafka.consumer.auto.offset.reset": "earliest",
                "kafka.producer.allow.auto.create.topics": "false", "http.timeoutSeconds": "120"})
    yield b
    b.close()


def produce(b: Bridge, topic: str, records: list[dict[str, Any]], ctype: str = JSON, path: str = "") -> httpx.Response:
    return b.http.post(f"/topics/{topic}{path}", json={"records": records}, headers={"content-type": ctype})


def new_consumer(b: Bridge, group: str, **body: Any) -> str:
    r = b.http.post(f"/consumers/{group}", json=body, headers={"content-type": V2})
    assert r.status_code == 200, r.text
    return r.json()["instance_id"]


def poll_until(b: Bridge, group: str, name: str, want: int, accept: str = JSON, tries: int = 20) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(tries):
        r = b.http.get(f"/consumers/{group}/instances/{name}/records", params={"timeout": 1000}, headers={"accept": accept})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == accept
        got += r.json()
        if len(got) >= want:
            break
    return got


def test_produce_json_and_consume_with_headers_keys_and_tombstone(bridge: Bridge, make_topic: Callable[..., str],
                                                                   unique_name: Callable[[str], str]) -> None:
    topic = make_topic(partitions=2)
    records = [
        {"key": "k1", "value": {"n": 1, "s": "é"}},
        {"key": ["a", 1], "value": [1, 2, 3], "partition": 1, "headers": [{"key": "h", "value": base64.b64encode(b"hv").decode()}]},
        {"key": "gone", "value": None, "partition": 0, "timestamp": 1591897790000},
    ]
    r = produce(bridge, topic, records)
    assert r.status_code == 200 and r.headers["content-type"] == V2
    offsets = r.json()["offsets"]
    assert [o["partition"] for o in offsets][1:] == [1, 0]
    assert all(isinstance(o["offset"], int) for o in offsets)

    group = unique_name("g")
    name = new_consumer(bridge, group, name="c1", format="json")
    assert bridge.http.post(f"/consumers/{group}/instances/c1/subscription", json={"topics": [topic]},
                            headers={"content-type": V2}).status_code == 204
    got = poll_until(bridge, group, name, 3)
    by_key = {str(rec["key"]): rec for rec in got}
    assert by_key["k1"]["value"] == {"n": 1, "s": "é"}
    assert by_key["['a', 1]"]["value"] == [1, 2, 3]
    assert by_key["['a', 1]"]["headers"] == [{"key": "h", "value": base64.b64encode(b"hv").decode()}]
    tomb = by_key["gone"]
    assert tomb["value"] is None and tomb["timestamp"] == 1591897790000 and "headers" not in tomb
    assert {rec["topic"] for rec in got} == {topic}

    sub = bridge.http.get(f"/consumers/{group}/instances/c1/subscription").json()
    assert sub["topics"] == [topic] and sorted(sub["partitions"][0][topic]) == [0, 1]
    assert bridge.http.post(f"/consumers/{group}/instances/c1/offsets").status_code == 204
    assert bridge.http.delete(f"/consumers/{group}/instances/c1").status_code == 204
    assert bridge.http.delete(f"/consumers/{group}/instances/c1").json() == {
        "error_code": 404, "message": "The specified consumer instance was not found."}


def test_binary_and_text_formats_to_partition_and_async(bridge: Bridge, make_topic: Callable[..., str],
                                                        unique_name: Callable[[str], str]) -> None:
    topic = make_topic(partitions=3)
    raw = bytes(range(256))
    r = produce(bridge, topic, [{"key": base64.b64encode(b"bk").decode(), "value": base64.b64encode(raw).decode()}],
                ctype=BINARY, path="/partitions/2")
    assert r.status_code == 200 and r.json()["offsets"] == [{"partition": 2, "offset": 0}], r.text
    r = produce(bridge, topic, [{"value": "plain text ✓"}], ctype=TEXT, path="/partitions/2")
    assert r.json()["offsets"] == [{"partition": 2, "offset": 1}]
    r = bridge.http.post(f"/topics/{topic}/partitions/2", params={"async": "true"}, json={"records": [{"value": "x"}]},
                         headers={"content-type": TEXT})
    assert r.status_code == 204 and r.content == b""

    group = unique_name("g")
    name = new_consumer(bridge, group, format="binary")
    assert name.startswith("kafka-bridge-consumer-")
    assert bridge.http.post(f"/consumers/{group}/instances/{name}/assignments",
                            json={"partitions": [{"topic": topic, "partition": 2}]}, headers={"content-type": V2}).status_code == 204
    got = poll_until(bridge, group, name, 3, accept=BINARY)
    assert base64.b64decode(got[0]["value"]) == raw and base64.b64decode(got[0]["key"]) == b"bk"
    assert base64.b64decode(got[1]["value"]).decode() == "plain text ✓"
    assert [g["offset"] for g in got] == [0, 1, 2]

    # the offsets endpoint sees the async record too
    assert bridge.http.get(f"/topics/{topic}/partitions/2/offsets").json() == {"beginning_offset": 0, "end_offset": 3}

    # seek back, to beginning and to end
    base = f"/consumers/{group}/instances/{name}"
    assert bridge.http.post(base + "/positions", json={"offsets": [{"topic": topic, "partition": 2, "offset": 1}]},
                            headers={"content-type": V2}).status_code == 204
    assert [g["offset"] for g in poll_until(bridge, group, name, 2, accept=BINARY)] == [1, 2]
    assert bridge.http.post(base + "/positions/beginning", json={"partitions": [{"topic": topic, "partition": 2}]},
                            headers={"content-type": V2}).status_code == 204
    assert [g["offset"] for g in poll_until(bridge, group, name, 3, accept=BINARY)] == [0, 1, 2]
    assert bridge.http.post(base + "/positions/end", json={"partitions": [{"topic": topic, "partition": 2}]},
                            headers={"content-type": V2}).status_code == 204
    assert poll_until(bridge, group, name, 1, accept=BINARY, tries=2) == []
    r = bridge.http.post(base + "/positions", json={"offsets": [{"topic": topic, "partition": 0, "offset": 0}]},
                         headers={"content-type": V2})
    assert r.status_code == 404
    # subscribe while assigned is a conflict
    r = bridge.http.post(base + "/subscription", json={"topics": [topic]}, headers={"content-type": V2})
    assert r.status_code == 409
    bridge.http.delete(base)


def test_producer_errors(bridge: Bridge, make_topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    topic = make_topic(partitions=1)
    missing = unique_name("missing")
    r = produce(bridge, missing, [{"value": "x"}])
    assert r.status_code == 404 and r.json() == {"error_code": 404, "message": "The specified topic was not found."}
    r = produce(bridge, topic, [{"value": "x"}], path="/partitions/5")  # Strimzi: a per-record 404
    assert r.status_code == 200 and r.json()["offsets"][0]["error_code"] == 404
    r = produce(bridge, topic, [{"value": 5}])
    assert r.status_code == 400 and r.json()["message"] == "Validation error on: Schema validation error"
    assert "Instance type number is invalid. Expected string" in r.json()["validation_errors"]
    r = produce(bridge, topic, [{"key": "k"}])
    assert 'Instance does not have required property "value"' in r.json()["validation_errors"]
    r = produce(bridge, topic, [{"value": "v", "partition": 0}], path="/partitions/0")
    assert r.status_code == 400 and 'Property "partition" does not match additional properties schema' in r.json()["validation_errors"]
    r = produce(bridge, topic, [{"value": {"not": "text"}}], ctype=TEXT)
    assert r.status_code == 422 and r.json()["message"] == "Because the embedded format is 'text', the value must be a string"
    assert produce(bridge, topic, [{"value": "!!notbase64"}], ctype=BINARY).status_code == 422
    r = bridge.http.post(f"/topics/{topic}", content=b'{"records":[]}', headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "not supported" in r.json()["message"]
    r = bridge.http.post(f"/topics/{topic}", content=b"{nope", headers={"content-type": JSON})
    assert r.status_code == 400
    r = bridge.http.post(f"/topics/{topic}", params={"async": "maybe"}, json={"records": []}, headers={"content-type": JSON})
    assert r.status_code == 400
    # a record in an accepted request that Kafka refuses is reported per record, the others are sent
    r = produce(bridge, topic, [{"value": "ok"}, {"value": "bad", "partition": 9}])
    assert r.status_code == 200
    ok, bad = r.json()["offsets"]
    assert ok["partition"] == 0 and bad["error_code"] == 404


def test_consumer_rules(bridge: Bridge, make_topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    topic = make_topic()
    group = unique_name("g")
    base = f"/consumers/{group}/instances/c"
    new_consumer(bridge, group, name="c", format="json", **{"enable.auto.commit": False, "fetch.min.bytes": 1})
    r = bridge.http.post(f"/consumers/{group}", json={"name": "c"}, headers={"content-type": V2})
    assert r.status_code == 409
    r = bridge.http.post(f"/consumers/{group}", json={"format": "avro"}, headers={"content-type": V2})
    assert r.status_code == 422 and r.json()["message"] == "Invalid format type."
    r = bridge.http.post(f"/consumers/{group}", json={"enable.auto.commit": "true"}, headers={"content-type": V2})
    assert r.status_code == 400
    r = bridge.http.post(f"/consumers/{group}", json={"isolation.level": "foo"}, headers={"content-type": V2})
    assert r.status_code == 422 and "isolation.level" in r.json()["message"]

    r = bridge.http.get(base + "/records", headers={"accept": JSON})
    assert r.status_code == 500 and "not subscribed" in r.json()["message"]  # Strimzi's status, its clients expect it
    r = bridge.http.post(base + "/subscription", json={"topics": [topic], "topic_pattern": "x.*"}, headers={"content-type": V2})
    assert r.status_code == 409
    r = bridge.http.post(base + "/subscription", json={}, headers={"content-type": V2})
    assert r.status_code == 422
    prefix = topic.rsplit("-", 1)[0]
    assert bridge.http.post(base + "/subscription", json={"topic_pattern": prefix + "-.*"},
                            headers={"content-type": V2}).status_code == 204
    r = bridge.http.get(base + "/records", headers={"accept": BINARY})
    assert r.status_code == 406

    # one non-JSON record: 406, and it is not skipped
    assert produce(bridge, topic, [{"value": base64.b64encode(b"not json").decode()}], ctype=BINARY).status_code == 200
    assert produce(bridge, topic, [{"value": {"big": "x" * 2000}}]).status_code == 200
    statuses = []
    for _ in range(20):
        r = bridge.http.get(base + "/records", params={"timeout": 1000}, headers={"accept": JSON})
        statuses.append(r.status_code)
        if r.status_code == 406:
            break
    assert statuses[-1] == 406 and "Failed to decode" in r.json()["message"]
    r = bridge.http.get(base + "/records", params={"timeout": 1000}, headers={"accept": JSON})
    assert r.status_code == 406  # the same record again, not lost

    # move past it by committing its offset + 1 and seeking there; then max_bytes refuses without skipping
    assert bridge.http.post(base + "/positions", json={"offsets": [{"topic": topic, "partition": 0, "offset": 1}]},
                            headers={"content-type": V2}).status_code == 204
    r = bridge.http.get(base + "/records", params={"timeout": 3000, "max_bytes": 100}, headers={"accept": JSON})
    assert r.status_code == 422 and r.json()["message"].startswith("Response exceeds")
    got = poll_until(bridge, group, "c", 1)
    assert got[0]["offset"] == 1 and got[0]["value"] == {"big": "x" * 2000}
    r = bridge.http.post(base + "/offsets", json={"offsets": [{"topic": topic, "partition": 0, "offset": 2}]},
                         headers={"content-type": V2})
    assert r.status_code == 204
    r = bridge.http.get(base + "/records", params={"timeout": "soon"}, headers={"accept": JSON})
    assert r.status_code == 400
    assert bridge.http.delete(base + "/subscription").status_code == 204
    assert bridge.http.get(base + "/records", headers={"accept": JSON}).status_code == 500
    bridge.http.delete(base)
    r = bridge.http.delete(base + "/subscription")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"


def test_topics_metadata_and_admin(bridge: Bridge, admin: Any, unique_name: Callable[[str], str]) -> None:
    name = unique_name("created")
    r = bridge.http.post("/admin/topics", json={"topic_name": name, "partitions_count": 2},
                         headers={"content-type": JSON})
    assert r.status_code == 201
    try:
        assert bridge.http.post("/admin/topics", json={"topic_name": name}, headers={"content-type": JSON}).status_code == 409
        assert bridge.http.post("/admin/topics", json={"partitions_count": 2}, headers={"content-type": JSON}).status_code == 400
        deadline = time.monotonic() + 10  # a new topic reaches the broker's metadata cache a moment later
        while name not in bridge.http.get("/topics").json() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert name in bridge.http.get("/topics").json()
        assert not any(t.startswith("__") for t in bridge.http.get("/topics").json())
        md = bridge.http.get(f"/topics/{name}").json()
        assert md["name"] == name and len(md["partitions"]) == 2 and "cleanup.policy" in md["configs"]
        node = next(iter(admin.list_topics(timeout=10).brokers))  # 0 for `triggerfish kafka up`, 1 for older data dirs
        assert md["partitions"][0]["replicas"] == [{"broker": node, "leader": True, "in_sync": True}]
        assert len(bridge.http.get(f"/topics/{name}/partitions").json()) == 2
        assert bridge.http.get(f"/topics/{name}/partitions/1").json()["partition"] == 1
        assert bridge.http.get(f"/topics/{name}/partitions/7").status_code == 404
        assert bridge.http.get(f"/topics/{name}/partitions/x").status_code == 400
        assert bridge.http.get(f"/topics/{name}/partitions/7/offsets").status_code == 404
        assert bridge.http.get(f"/topics/{unique_name('nope')}").status_code == 404
    finally:
        admin.delete_topics([name])[name].result(30)


def test_info_openapi_management_and_forwarded_base_uri(bridge: Bridge, unique_name: Callable[[str], str]) -> None:
    info = bridge.http.get("/")
    assert info.headers["content-type"] == "application/json" and "bridge_version" in info.json()
    spec = bridge.http.get("/openapi").json()
    assert spec["openapi"] == "3.1.0" and "/consumers/{groupid}" in spec["paths"]
    assert bridge.http.get("/openapi/v3", headers={"x-forwarded-path": "/gw"}).json()["basePath"] == "/gw"
    assert bridge.http.get("/nope").json() == {"error_code": 404, "message": "Not Found"}
    for base in (bridge.url, bridge.management):
        assert httpx.get(base + "/healthy").status_code == 200
        assert httpx.get(base + "/ready").status_code == 200
    metrics = httpx.get(bridge.management + "/metrics").text
    assert 'triggerfish_bridge_http_requests_total{operation="openapi",status="200"}' in metrics
    assert "process_resident_memory_bytes" in metrics
    assert "triggerfish_bridge_records_produced_total" in metrics and "triggerfish_bridge_consumer_instances" in metrics
    assert httpx.get(bridge.management + "/topics").status_code == 404  # management port serves only probes

    group = unique_name("g")
    r = bridge.http.post(f"/consumers/{group}", json={"name": "fw"}, headers={
        "content-type": V2, "forwarded": "host=my-api-gateway-host:443;proto=https", "x-forwarded-path": f"/my-bridge/consumers/{group}"})
    assert r.json()["base_uri"] == f"https://my-api-gateway-host:443/my-bridge/consumers/{group}/instances/fw"
    r = bridge.http.post(f"/consumers/{group}", json={"name": "plain"}, headers={"content-type": V2, "host": "localhost"})
    assert r.json()["base_uri"] == f"http://localhost:80/consumers/{group}/instances/plain"
    for n in ("fw", "plain"):
        bridge.http.delete(f"/consumers/{group}/instances/{n}")


def test_idle_consumers_expire_and_disabled_parts(kafka: KafkaEnv, unique_name: Callable[[str], str]) -> None:
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "http.timeoutSeconds": "1", "http.producer.enabled": "false"})
    try:
        group = unique_name("g")
        name = new_consumer(b, group)
        kept = new_consumer(b, group)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # keep one busy
            assert b.http.get(f"/consumers/{group}/instances/{kept}/subscription").status_code == 200
            time.sleep(0.3)
        time.sleep(0.3)
        assert b.http.get(f"/consumers/{group}/instances/{name}/subscription").status_code == 404
        assert b.http.get(f"/consumers/{group}/instances/{kept}/subscription").status_code == 200
        r = b.http.post("/topics/any", json={"records": [{"value": "x"}]}, headers={"content-type": JSON})
        assert r.status_code == 503 and "http.producer.enabled" in r.json()["message"]
    finally:
        b.close()
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "http.consumer.enabled": "false"})
    try:
        r = b.http.post("/consumers/g", json={}, headers={"content-type": V2})
        assert r.status_code == 503 and "http.consumer.enabled" in r.json()["message"]
    finally:
        b.close()


@pytest.mark.parametrize("kind", ["basic", "bearer"])
def test_http_auth(kafka: KafkaEnv, kind: str) -> None:
    props = {"kafka.bootstrap.servers": kafka.bootstrap, "http.auth.type": kind, "http.auth.username": "app",
             "http.auth.password": "pw-123", "http.auth.token": "tok-456", "http.cors.enabled": "true",
             "http.cors.allowedOrigins": "https://ok\\.example"}
    b = Bridge(props)
    try:
        r = b.http.get("/topics")
        assert r.status_code == 401 and "www-authenticate" in r.headers
        assert "pw-123" not in r.text and "tok-456" not in r.text
        good = ("app", "pw-123") if kind == "basic" else None
        headers = {"authorization": "Bearer tok-456"} if kind == "bearer" else {}
        assert b.http.get("/topics", auth=good, headers=headers).status_code == 200
        wrong = {"authorization": "Bearer nope"} if kind == "bearer" else {}
        assert b.http.get("/topics", auth=("app", "nope") if kind == "basic" else None, headers=wrong).status_code == 401
        assert httpx.get(b.url + "/healthy").status_code == 200  # probes stay open
        assert httpx.get(b.management + "/metrics").status_code == 401
        pre = httpx.options(b.url + "/topics", headers={"origin": "https://ok.example", "access-control-request-method": "GET"})
        assert pre.headers.get("access-control-allow-origin") == "https://ok.example"
        pre = httpx.options(b.url + "/topics", headers={"origin": "https://evil.example", "access-control-request-method": "GET"})
        assert pre.headers.get("access-control-allow-origin") != "https://evil.example"
    finally:
        b.close()


def test_bridge_credentials_refused_is_a_fast_503_and_not_ready(kafka: KafkaEnv) -> None:
    b = Bridge({"kafka.bootstrap.servers": kafka.sasl_bootstrap, "kafka.security.protocol": "SASL_SSL",
                "kafka.sasl.mechanism": "SCRAM-SHA-512", "kafka.ssl.truststore.type": "PEM",
                "kafka.ssl.truststore.location": kafka.ca_file,
                "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                          'username="admin" password="not-the-password";'})
    try:
        deadline = time.monotonic() + 20
        while httpx.get(b.url + "/ready").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert httpx.get(b.url + "/ready").status_code == 500
        assert httpx.get(b.url + "/healthy").status_code == 200
        start = time.monotonic()
        r = b.http.get("/topics")
        assert r.status_code == 503 and time.monotonic() - start < 2
        assert "rejected the bridge's own credentials" in r.json()["message"] and "User:admin" in r.json()["message"]
        assert "not-the-password" not in r.text
    finally:
        b.close()


def test_delete_does_not_wait_for_a_long_poll(bridge: Bridge, make_topic: Callable[..., str],
                                              unique_name: Callable[[str], str]) -> None:
    import threading

    topic, group = make_topic(), unique_name("g")
    new_consumer(bridge, group, name="slow", format="json")
    base = f"/consumers/{group}/instances/slow"
    bridge.http.post(base + "/subscription", json={"topics": [topic]}, headers={"content-type": V2})
    statuses: list[int] = []

    def long_poll() -> None:
        with httpx.Client(base_url=bridge.url, timeout=120) as c:
            statuses.append(c.get(base + "/records", params={"timeout": 60000}, headers={"accept": JSON}).status_code)

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(1.0)
    start = time.monotonic()
    assert bridge.http.delete(base).status_code == 204
    poller.join(10)
    assert time.monotonic() - start < 5 and not poller.is_alive()
    assert statuses and statuses[0] in (200, 404)


def test_https_listener(kafka: KafkaEnv, tmp_path: Any) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    prepared = prepare(from_properties({
        "http.port": "0", "kafka.bootstrap.servers": kafka.bootstrap, "http.ssl.enable": "true",
        "http.ssl.certificate.location": str(tmp_path / "server.pem"), "http.ssl.key.location": str(tmp_path / "key.pem"),
    }, environ={}))
    thread = prepared.start_in_thread()
    try:
        host, port = prepared.addresses[0]
        import ssl

        r = httpx.get(f"https://{host}:{port}/healthy", verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")))
        assert r.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://{host}:{port}/healthy")  # verification stays on: an unknown CA is refused
    finally:
        prepared.stop(thread)
