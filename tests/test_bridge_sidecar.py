"""The sidecar scenario: the bridge on 127.0.0.1 talks mTLS to Kafka as a KafkaUser with ACLs.

Config comes from a Strimzi-style properties file whose secrets are ``${env:...}`` placeholders.
With the ACLs in place every step works; with an ACL missing the answer is a 403 that names the
principal, the resource and the ``kafka-acls.sh`` line that fixes it (Strimzi answers 500).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AclBinding, AclOperation, ResourceType

from kafka_helpers import allow
from triggerfish.bridge.config import from_file
from triggerfish.bridge.server import prepare
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

PRINCIPAL = "User:triggerfish-client"
V2 = "application/vnd.kafka.v2+json"
JSON = "application/vnd.kafka.json.v2+json"

SIDECAR_PROPERTIES = """\
bridge.id=bridge-sidecar
http.host=127.0.0.1
http.port=0
http.management.port=0
kafka.config.providers=env
kafka.config.providers.env.class=io.strimzi.kafka.EnvVarConfigProvider
kafka.bootstrap.servers=${env:BOOTSTRAP_SERVERS}
kafka.security.protocol=SSL
kafka.ssl.keystore.type=PEM
kafka.ssl.keystore.certificate.chain=${env:USER_CRT}
kafka.ssl.keystore.key=${env:USER_KEY}
kafka.ssl.truststore.type=PEM
kafka.ssl.truststore.certificates=${env:CA_CRT}
kafka.ssl.endpoint.identification.algorithm=HTTPS
kafka.producer.acks=1
kafka.consumer.auto.offset.reset=earliest
"""


@pytest.fixture
def sidecar(kafka: KafkaEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.setenv("BOOTSTRAP_SERVERS", kafka.mtls_bootstrap)
    monkeypatch.setenv("USER_CRT", Path(kafka.client_cert_file).read_text())
    monkeypatch.setenv("USER_KEY", Path(kafka.client_key_file).read_text())
    monkeypatch.setenv("CA_CRT", Path(kafka.ca_file).read_text())
    path = tmp_path / "bridge.properties"
    path.write_text(SIDECAR_PROPERTIES)
    prepared = prepare(from_file(path))
    thread = prepared.start_in_thread()
    host, port = prepared.addresses[0]
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
        yield client
    prepared.stop(thread)


def _subscribe_until_refused(client: httpx.Client, group: str, topic: str) -> tuple[str, httpx.Response]:
    """Subscribe a new consumer of ``group`` to ``topic`` and poll until the bridge refuses with 403."""
    client.post(f"/consumers/{group}", json={"name": "app", "format": "json"}, headers={"content-type": V2})
    base = f"/consumers/{group}/instances/app"
    assert client.post(base + "/subscription", json={"topics": [topic]}, headers={"content-type": V2}).status_code == 204
    for _ in range(10):
        r = client.get(base + "/records", params={"timeout": 1000}, headers={"accept": JSON})
        if r.status_code != 200:
            break
    assert r.status_code == 403, r.text
    return base, r


def _poll(client: httpx.Client, base: str, want: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(20):
        r = client.get(base + "/records", params={"timeout": 1000}, headers={"accept": JSON})
        assert r.status_code == 200, r.text
        got += r.json()
        if len(got) >= want:
            break
    return got


def test_sidecar_with_acls_full_cycle(sidecar: httpx.Client, acls: Callable[[list[AclBinding]], None],
                                      make_topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    topic, group = make_topic(), unique_name("sidecar")
    acls([allow(ResourceType.TOPIC, topic, PRINCIPAL, AclOperation.READ), allow(ResourceType.TOPIC, topic, PRINCIPAL, AclOperation.WRITE),
          allow(ResourceType.GROUP, group, PRINCIPAL, AclOperation.READ)])

    r = sidecar.post(f"/topics/{topic}", json={"records": [{"key": "order-1", "value": {"qty": 2}}]},
                     headers={"content-type": JSON})
    assert r.status_code == 200 and r.json()["offsets"] == [{"partition": 0, "offset": 0}], r.text
    assert topic in sidecar.get("/topics").json()

    r = sidecar.post(f"/consumers/{group}", json={"name": "app", "format": "json", "enable.auto.commit": False},
                     headers={"content-type": V2})
    assert r.status_code == 200
    base = f"/consumers/{group}/instances/app"
    assert sidecar.post(base + "/subscription", json={"topics": [topic]}, headers={"content-type": V2}).status_code == 204
    got = _poll(sidecar, base, 1)
    assert [(g["key"], g["value"]) for g in got] == [("order-1", {"qty": 2})]
    assert sidecar.post(base + "/offsets").status_code == 204
    assert sidecar.delete(base).status_code == 204

    # Read+Write imply Describe but not DescribeConfigs: Strimzi's "500 Topic authorization failed."
    r = sidecar.get(f"/topics/{topic}")
    assert r.status_code == 403
    message = r.json()["message"]
    assert PRINCIPAL in message and f"topic '{topic}'" in message and "DescribeConfigs" in message
    assert f"--allow-principal {PRINCIPAL} --operation DescribeConfigs --topic {topic}" in message


def test_sidecar_with_topic_acls_missing(sidecar: httpx.Client, acls: Callable[[list[AclBinding]], None],
                                         make_topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    topic, group = make_topic(), unique_name("sidecar")
    acls([allow(ResourceType.GROUP, group, PRINCIPAL, AclOperation.READ)])  # no topic ACL at all: not even Describe

    r = sidecar.post(f"/topics/{topic}", json={"records": [{"value": "x"}]}, headers={"content-type": JSON})
    assert r.status_code == 403
    assert f"--allow-principal {PRINCIPAL} --operation Describe --topic {topic}" in r.json()["message"]
    r = sidecar.get(f"/topics/{topic}")
    assert r.status_code == 403 and f"Kafka denied Describe on topic '{topic}' to principal {PRINCIPAL}" in r.json()["message"]
    assert topic not in sidecar.get("/topics").json()

    base, r = _subscribe_until_refused(sidecar, group, topic)
    assert f"--allow-principal {PRINCIPAL} --operation Read --topic {topic}" in r.json()["message"]
    sidecar.delete(base)


def test_sidecar_with_group_acl_missing(sidecar: httpx.Client, acls: Callable[[list[AclBinding]], None],
                                        make_topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    topic, group = make_topic(), unique_name("nogroup")
    acls([allow(ResourceType.TOPIC, topic, PRINCIPAL, AclOperation.READ)])
    base, r = _subscribe_until_refused(sidecar, group, topic)
    assert f"--allow-principal {PRINCIPAL} --operation Read --group {group}" in r.json()["message"]
    sidecar.delete(base)
