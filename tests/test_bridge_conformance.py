"""Conformance: schemathesis drives Strimzi's own OpenAPI spec against our bridge, real broker behind it.

Checks: no 5xx, responses match the declared schemas, content types and headers, invalid requests are
rejected with a 4xx, schema-valid requests are not refused as malformed (400), and every error body
is Strimzi's ``{"error_code": <status>, "message": ...}``.

Deliberately not checked, because the spec itself says otherwise than Strimzi's own behaviour:
- ``status_code_conformance``: the spec documents no 400 anywhere, yet Strimzi (and we) answer 400 for
  every schema-invalid request;
- the response schema of ``/openapi`` and ``/openapi/v3`` (declared ``type: string``; the spec is served
  as a JSON object, as Strimzi does) and of ``listSubscriptions`` (declares ``topics`` as the ``Topics``
  object, while its own example and Strimzi answer a list of names, as we do).

Consumer-instance operations are pointed at a live, subscribed consumer (otherwise every generated
name is a 404 and the core logic is never reached). Generated bodies of ``createTopic`` get a unique
topic name and a small partition count so a shared broker is not littered or overloaded; topics are
deleted afterwards. Poll timeouts are capped at one second to keep the run bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig

from triggerfish.bridge.config import from_properties
from triggerfish.bridge.server import prepare
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

SPEC = str(resources.files("triggerfish.bridge").joinpath("openapi.json"))
# no on-disk cache: nothing written into the working tree
schema = schemathesis.openapi.from_path(SPEC, config=SchemathesisConfig.from_dict({"cache": {"enabled": False}}))

RUN = uuid.uuid4().hex[:8]
GROUP, NAME, TOPIC = f"tf-conf-{RUN}", "live", f"tf-conf-{RUN}"
V2 = "application/vnd.kafka.v2+json"


class Live:
    url: str = ""
    created: list[str] = []


@pytest.fixture(scope="module")
def live(kafka: KafkaEnv, admin: Any) -> Iterator[type[Live]]:
    from confluent_kafka.admin import NewTopic

    admin.create_topics([NewTopic(TOPIC, 2, 1)])[TOPIC].result(30)
    prepared = prepare(from_properties({
        "http.port": "0", "http.management.port": "-1", "http.timeoutSeconds": "5",
        "kafka.bootstrap.servers": kafka.bootstrap,
        "kafka.producer.allow.auto.create.topics": "false", "kafka.consumer.allow.auto.create.topics": "false",
        "kafka.consumer.auto.offset.reset": "earliest", "kafka.producer.max.block.ms": "2000",
    }, environ={}))
    thread = prepared.start_in_thread()
    host, port = prepared.addresses[0]
    Live.url = f"http://{host}:{port}"
    with httpx.Client(base_url=Live.url) as http:
        http.post(f"/topics/{TOPIC}", json={"records": [{"key": "k", "value": {"n": i}} for i in range(5)]},
                  headers={"content-type": "application/vnd.kafka.json.v2+json"})
    yield Live
    prepared.stop(thread)
    names = [TOPIC, *Live.created]
    for fut in admin.delete_topics(names).values():
        try:
            fut.result(30)
        except Exception:
            pass


def _ensure_live_consumer() -> None:
    with httpx.Client(base_url=Live.url, timeout=10) as http:
        base = f"/consumers/{GROUP}/instances/{NAME}"
        r = http.get(base + "/subscription")
        if r.status_code == 404:
            http.post(f"/consumers/{GROUP}", json={"name": NAME, "format": "json"}, headers={"content-type": V2})
        sub = http.get(base + "/subscription").json()
        if not sub.get("topics"):
            http.post(base + "/subscription", json={"topics": [TOPIC]}, headers={"content-type": V2})


def strimzi_error_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error response carries Strimzi's error body with error_code equal to the status."""
    if response.status_code < 400 or case.method.upper() in ("HEAD", "TRACE"):
        return None
    body = response.json()
    assert isinstance(body, dict) and body.get("error_code") == response.status_code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return None


def schema_valid_not_refused_as_malformed(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request generated from the schema (positive mode) is never a 400 'validation error'."""
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and case.method.upper() in ("GET", "POST", "DELETE"):
        assert response.status_code != 400, f"schema-valid request refused: {response.text}"
    return None


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, response_headers_conformance,
          negative_data_rejection, unsupported_method, strimzi_error_body, schema_valid_not_refused_as_malformed]


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_spec_conformance(case: Any, live: type[Live]) -> None:
    op = case.operation.definition.raw.get("operationId", "")
    params = case.path_parameters or {}
    if "name" in params:
        _ensure_live_consumer()
        params.update(groupid=GROUP, name=NAME)
    if op == "poll" and isinstance(case.query, dict):
        t = case.query.get("timeout")
        if isinstance(t, int) and t > 1000:
            case.query["timeout"] = 1000
    if op == "createTopic" and isinstance(case.body, dict) and isinstance(case.body.get("topic_name"), str):
        case.body["topic_name"] = f"tf-conf-{RUN}-{len(Live.created)}"
        Live.created.append(case.body["topic_name"])
        pc = case.body.get("partitions_count")
        if isinstance(pc, int) and not isinstance(pc, bool) and pc > 4:
            case.body["partitions_count"] = 2
    checks = list(CHECKS)
    if op in ("openapi", "openapiv3", "listSubscriptions"):
        checks.remove(response_schema_conformance)
    case.call_and_validate(base_url=live.url, checks=checks, timeout=30)
