"""Strimzi's answers where its own integration tests pin them, over real HTTP in front of the real broker:
validation lists, per-record partition errors, the 500s its clients expect, subscriptions, CORS, metrics,
the management port beside TLS."""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from triggerfish.bridge.config import from_properties
from triggerfish.bridge.server import prepare
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

V2 = "application/vnd.kafka.v2+json"
JSON = "application/vnd.kafka.json.v2+json"


class _Bridge:
    def __init__(self, props: dict[str, str]) -> None:
        self.prepared = prepare(from_properties({"http.port": "0", "http.management.port": "0", **props}, environ={}))
        self.thread = self.prepared.start_in_thread()
        (h, p), (_, mp) = self.prepared.addresses[:2]
        self.url, self.management = f"http://{h}:{p}", f"http://{h}:{mp}"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        self.http.close()
        self.prepared.stop(self.thread)


def _start(kafka: KafkaEnv, **props: str) -> _Bridge:
    return _Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "kafka.consumer.auto.offset.reset": "earliest",
                    "kafka.producer.max.block.ms": "10000", **props})


@pytest.fixture(scope="module")
def bridge(kafka: KafkaEnv) -> Iterator[_Bridge]:
    b = _start(kafka, **{"kafka.statistics.interval.ms": "300"})  # librdkafka's reports, for the clients' metrics
    yield b
    b.close()


def _consumer(b: _Bridge, group: str, name: str, **body: Any) -> str:
    r = b.http.post(f"/consumers/{group}", json={"name": name, "format": "json", **body}, headers={"content-type": V2})
    assert r.status_code == 200, r.text
    return f"/consumers/{group}/instances/{name}"


def test_validation_errors_list_strimzis_units(bridge: _Bridge, make_topic: Callable[..., str]) -> None:
    topic = make_topic(partitions=3)
    r = bridge.http.post(f"/topics/{topic}/partitions/0", json={"records": [{"value": "x", "partition": 0}]},
                         headers={"content-type": JSON})
    assert r.status_code == 400 and r.json() == {
        "error_code": 400, "message": "Validation error on: Schema validation error",
        "validation_errors": ['Property "records" does not match schema', "Items did not match schema",
                              "A subschema had errors", 'Property "partition" does not match additional properties schema',
                              'Property "records" does not match additional properties schema']}
    for path, expected in ((f"/topics/{topic}/partitions/karel", "Instance type string is invalid. Expected integer"),
                           (f"/topics/{topic}/partitions/-1", "-1 is less than 0"),
                           (f"/topics/{topic}?async=wrong", "Instance type string is invalid. Expected boolean")):
        r = bridge.http.post(path, json={"records": [{"value": "x"}]}, headers={"content-type": JSON})
        assert r.status_code == 400 and r.json()["validation_errors"] == [expected], path
    for path in (f"/topics/{topic}/partitions/-1", f"/topics/{topic}/partitions/-1/offsets"):
        assert bridge.http.get(path).json()["validation_errors"] == ["-1 is less than 0"]
    r = bridge.http.post("/consumers/g", json={"fetch.min.bytes": "foo"}, headers={"content-type": V2})
    assert r.status_code == 400 and r.json()["validation_errors"] == [
        'Property "fetch.min.bytes" does not match schema', "Instance type string is invalid. Expected integer",
        'Property "fetch.min.bytes" does not match additional properties schema']
    r = bridge.http.post(f"/topics/{topic}")
    assert r.status_code == 400 and r.json() == {
        "error_code": 400, "message": "Validation error on: The related request does not contain the required body."}


def test_produce_answers(bridge: _Bridge, make_topic: Callable[..., str]) -> None:
    topic = make_topic(partitions=3)
    r = bridge.http.post(f"/topics/{topic}", json={}, headers={"content-type": JSON})
    assert r.status_code == 422 and r.json()["error_code"] == 422
    r = bridge.http.post(f"/topics/{topic}", json={"records": [{"value": "ok", "partition": 1}, {"value": "no", "partition": 500}]},
                         headers={"content-type": JSON})
    assert r.status_code == 200
    ok, bad = r.json()["offsets"]
    assert ok == {"partition": 1, "offset": 0}
    assert bad == {"error_code": 404, "message": f"Partition 500 of topic {topic} with partition count 3 is not "
                                                 "present in metadata after 10000 ms."}
    r = bridge.http.post(f"/topics/{topic}/partitions/1000", json={"records": [{"value": "x"}]}, headers={"content-type": JSON})
    assert r.status_code == 200 and r.json()["offsets"][0]["message"].startswith("Partition 1000 of topic")


def test_a_producer_config_the_java_client_refuses_is_a_500_per_send(kafka: KafkaEnv, make_topic: Callable[..., str]) -> None:
    b = _start(kafka, **{"kafka.producer.acks": "5"})
    try:
        r = b.http.post(f"/topics/{make_topic()}", json={"records": [{"value": "x"}]}, headers={"content-type": JSON})
        assert r.status_code == 500 and "acks" in r.json()["message"]
        assert b.http.get("/topics").status_code == 200  # the rest of the bridge works
    finally:
        b.close()


def test_consumer_answers(bridge: _Bridge, make_topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    group = unique_name("g")
    base = _consumer(bridge, group, "c")
    r = bridge.http.post(f"/consumers/{group}", json={"name": "c"}, headers={"content-type": V2})
    assert r.status_code == 409
    assert r.json()["message"] == "A consumer instance with the specified name already exists in the Kafka Bridge."
    r = bridge.http.post(f"/consumers/{group}", json={"name": "d", "auto.offset.reset": "foo"}, headers={"content-type": V2})
    assert r.status_code == 422 and "'earliest', 'latest', 'none' or of the format 'by_duration" in r.json()["message"]
    r = bridge.http.get(base + "/records", headers={"accept": JSON})
    assert r.status_code == 500
    assert r.json() == {"error_code": 500, "message": "Consumer is not subscribed to any topics or assigned any partitions"}
    # a proto with no default port is Strimzi's 500; with a port any proto is taken as written
    r = bridge.http.post(f"/consumers/{group}", json={"name": "e"}, headers={"content-type": V2, "forwarded": "host=gw;proto=mqtt"})
    assert r.status_code == 500 and r.json()["message"] == "mqtt is not a valid schema/proto."
    r = bridge.http.post(f"/consumers/{group}", json={"name": "f"},
                         headers={"content-type": V2, "forwarded": "host=gw:1883;proto=mqtt"})
    assert r.status_code == 200 and r.json()["base_uri"] == f"mqtt://gw:1883/consumers/{group}/instances/f"

    topic = make_topic()
    assert bridge.http.post(base + "/subscription", json={"topics": [topic]}, headers={"content-type": V2}).status_code == 204
    assert bridge.http.get(base + "/subscription").json()["topics"] == [topic]
    r = bridge.http.post(base + "/subscription", json={"topics": []}, headers={"content-type": V2})
    assert r.status_code == 204 and r.content == b""  # an empty list unsubscribes, as the Java client's does
    assert bridge.http.get(base + "/subscription").json()["topics"] == []


def test_topic_pattern_in_java_syntax(bridge: _Bridge, make_topic: Callable[..., str], kafka: KafkaEnv,
                                      unique_name: Callable[[str], str]) -> None:
    prefix = unique_name("pat")
    topics = [make_topic(prefix=prefix), make_topic(prefix=prefix)]
    producer = Producer(kafka.plaintext())
    for t in topics:
        producer.produce(t, b'"hello"')
    assert producer.flush(30) == 0
    group = unique_name("g")
    base = _consumer(bridge, group, "p")
    pattern = re.escape(prefix) + r"-[\w-]+-[0-9a-f]{8}"  # as a Java client writes it
    pattern = pattern.replace("[0-9a-f]", r"[\da-f]")
    assert bridge.http.post(base + "/subscription", json={"topic_pattern": pattern},
                            headers={"content-type": V2}).status_code == 204
    got: set[str] = set()
    deadline = time.monotonic() + 30
    while got != set(topics) and time.monotonic() < deadline:
        r = bridge.http.get(base + "/records", params={"timeout": 1000}, headers={"accept": JSON})
        assert r.status_code == 200, r.text
        got |= {rec["topic"] for rec in r.json()}
    assert got == set(topics)


def test_cors_like_strimzi(kafka: KafkaEnv) -> None:
    path = "/consumers/1/instances/1/subscription"
    off = _start(kafka)
    try:
        r = off.http.options(path, headers={"origin": "https://evil.io", "access-control-request-method": "POST"})
        assert r.status_code == 405
        assert off.http.post(path, headers={"origin": "https://evil.io"}).status_code == 400  # no body: Strimzi's 400
        r = off.http.post(path, json={"topics": ["t"]}, headers={"origin": "https://evil.io", "content-type": V2})
        assert r.status_code == 403 and "http.cors.enabled" in r.json()["message"]  # never reaches the handler
    finally:
        off.close()
    on = _start(kafka, **{"http.cors.enabled": "true", "http.cors.allowedOrigins": "https://strimzi.io",
                          "http.cors.allowedMethods": "GET,DELETE,PUT,OPTIONS,PATCH"})
    try:
        for method in ("OPTIONS", "POST"):
            r = on.http.request(method, path, headers={"origin": "https://evil.io", "access-control-request-method": "POST"})
            assert r.status_code == 403 and r.text == "CORS Rejected - Invalid origin"
        r = on.http.options("/topics/t", headers={"origin": "https://strimzi.io", "access-control-request-method": "POST"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://strimzi.io"
        assert r.headers["access-control-allow-headers"] == ("access-control-allow-origin,content-length,x-forwarded-proto,"
                                                              "x-forwarded-host,origin,x-requested-with,content-type,"
                                                              "access-control-allow-methods,accept")
        assert "POST" not in r.headers["access-control-allow-methods"].split(",")
        r = on.http.post(path, json={"topics": ["t"]}, headers={"origin": "https://strimzi.io", "content-type": V2})
        assert r.status_code == 404 and r.headers["access-control-allow-origin"] == "https://strimzi.io"
    finally:
        on.close()


def _value(metrics: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*}})?\s+(\d+(?:\.\d+)?)\s*$", metrics, re.MULTILINE)
    assert m is not None, name
    return float(m.group(1))


def test_strimzis_metric_families(bridge: _Bridge, make_topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    topic = make_topic()
    assert bridge.http.post(f"/topics/{topic}", json={"records": [{"value": "m"}]}, headers={"content-type": JSON}).status_code == 200
    group = unique_name("g")
    base = _consumer(bridge, group, "m")
    assert bridge.http.post(base + "/subscription", json={"topics": [topic]}, headers={"content-type": V2}).status_code == 204
    for _ in range(20):
        r = bridge.http.get(base + "/records", params={"timeout": 1000}, headers={"accept": JSON})
        if r.json():
            break
    r = httpx.get(bridge.management + "/metrics")
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = r.text
    assert _value(text, "kafka_producer_producer_metrics_record_send") >= 1
    assert 'kafka_consumer_consumer_fetch_manager_metrics_records_consumed{client_id="m"} 1.0' in text
    assert f'strimzi_bridge_http_server_requests_total{{code="200",method="POST",path="/topics/{topic}"}} 1.0' in text
    assert _value(text, "executor_completed_tasks_total") > 0 and _value(text, "executor_pool_size_threads") > 0
    assert 'name="kafka-bridge"' in text and "jvm_memory_used_bytes" in text
    assert f'strimzi_bridge_http_server_request_bytes_sum{{method="POST",path="/topics/{topic}"}} 27.0' in text  # the compact body
    assert f'strimzi_bridge_http_server_response_bytes_count{{code="200",method="POST",path="/topics/{topic}"}} 1.0' in text
    assert _value(text, "strimzi_bridge_http_server_bytes_read_total") >= 27
    assert _value(text, "strimzi_bridge_http_server_active_connections") >= 1  # this scrape's own, at least
    # the Java clients' metrics librdkafka's statistics give, by client id
    deadline = time.monotonic() + 10
    while 'kafka_consumer_consumer_coordinator_metrics_assigned_partitions{client_id="m"} 1.0' not in text:
        assert time.monotonic() < deadline, text
        bridge.http.get(base + "/records", params={"timeout": 200}, headers={"accept": JSON})  # stats come on a poll
        text = httpx.get(bridge.management + "/metrics").text
    assert _value(text, "kafka_producer_producer_metrics_connection_count") >= 1
    assert _value(text, "kafka_producer_producer_metrics_outgoing_byte") > 0
    assert 'kafka_consumer_consumer_metrics_incoming_byte{client_id="m"}' in text
    assert 'kafka_consumer_consumer_fetch_manager_metrics_records_lag_max{client_id="m"} 0.0' in text
    assert bridge.http.post(base + "/offsets").status_code == 204
    text = httpx.get(bridge.management + "/metrics").text
    assert 'kafka_consumer_consumer_coordinator_metrics_commit{client_id="m"} 1.0' in text
    assert _value(text, "kafka_consumer_consumer_coordinator_metrics_commit_latency_avg") >= 0
    bridge.http.delete(base)
    assert 'client_id="m"' not in httpx.get(bridge.management + "/metrics").text  # a deleted instance's series go


def test_management_port_stays_plain_http_with_tls_on(kafka: KafkaEnv, tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    b = _start(kafka, **{"http.ssl.enable": "true", "http.ssl.certificate.location": str(tmp_path / "server.pem"),
                         "http.ssl.key.location": str(tmp_path / "server.pem")})
    try:
        (host, port), (_, mport) = b.prepared.addresses
        tls = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        assert httpx.get(f"https://{host}:{port}/topics", verify=tls).status_code == 200
        for probe in ("/healthy", "/ready", "/metrics"):
            assert httpx.get(f"http://{host}:{mport}{probe}").status_code == 200, probe
    finally:
        b.close()
