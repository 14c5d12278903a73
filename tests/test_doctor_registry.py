"""``doctor kafka --mapping``'s schema registry stage against the real registry (Apicurio), a closed port and a
registry that refuses the credential (HTTP 401, Confluent's error body)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from kafka_helpers import closed_port, env_secret
from test_doctor_kafka import write_orders_project
from test_schema_registry_engine import AVRO_SCHEMA
from triggerfish.doctor import kafka as doctor
from triggerfish.schemas import RegistryUnavailable, SchemaDecoder, open_registry

pytestmark = pytest.mark.kafka


class _Refuses(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"error_code": 40101, "message": "Unauthorized"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def registry_rows(kafka: Any, topic: str, tmp_path: Path, registry: str, access: str = "") -> list[Any]:
    tmp_path.mkdir()
    config = write_orders_project(tmp_path, f"""
  - FunctionName: orders
    Topics: [{topic}]
    StartingPosition: TRIM_HORIZON
    SelfManagedEventSource:
      Endpoints:
        KAFKA_BOOTSTRAP_SERVERS: ["{kafka.bootstrap}"]
    SelfManagedKafkaEventSourceConfig:
      SchemaRegistryConfig:
        SchemaRegistryURI: "{registry}"
        EventRecordFormat: JSON
        SchemaValidationConfigs: [{{Attribute: VALUE}}]{access}
""")
    checks = doctor.diagnose(doctor.plan_from_mapping(config, "orders"), poll=False)
    return [c for c in checks if c.stage == "schema_registry"]


def test_registry_stage_reachable_unreachable_and_refused(
        kafka: Any, make_topic: Any, schema_registry: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    topic = make_topic()
    subject = f"{topic}-value"
    SchemaRegistryClient({"url": schema_registry}).register_schema(subject, Schema(AVRO_SCHEMA, "AVRO"))
    (ok,) = registry_rows(kafka, topic, tmp_path / "a", schema_registry)
    assert ok.status == "ok" and "reachable and authenticated" in ok.detail and ok.target == schema_registry

    down = f"http://127.0.0.1:{closed_port()}/apis/ccompat/v7"
    (fail,) = registry_rows(kafka, topic, tmp_path / "b", down)
    assert fail.status == "fail" and down in fail.detail and "unreachable" in fail.detail
    assert "start the registry" in fail.fix

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        secret = env_secret(monkeypatch, {"username": "svc", "password": "hunter2-secret"})
        access = f"\n        AccessConfigs: [{{Type: BASIC_AUTH, URI: \"{secret}\"}}]"
        (refused,) = registry_rows(kafka, topic, tmp_path / "c", url, access)
        assert refused.status == "fail" and "HTTP 401" in refused.detail and "BASIC_AUTH" in refused.detail
        assert "hunter2" not in json.dumps(refused.to_dict())
        # the engine's decoder says the same, retrying (not dropping) the record
        decoder = SchemaDecoder(open_registry(url, [{"Type": "BASIC_AUTH", "URI": secret}]))
        with pytest.raises(RegistryUnavailable, match=f"schema registry {url}: schema id 7: HTTP 401"):
            decoder.decode(b"\x00\x00\x00\x00\x07payload")
    finally:
        server.shutdown()
