"""Consumers through any replica: three real bridge processes on 127.0.0.1 forward to the replica holding an instance."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from triggerfish.bridge.config import from_properties
from triggerfish.bridge.forwarding import FORWARDED
from triggerfish.bridge.peers import Peers
from triggerfish.bridge.replicas_config import ReplicasConfig
from triggerfish.errors import ConfigError
from triggerfish.localkafka import KafkaEnv

V2 = {"content-type": "application/vnd.kafka.v2+json"}
JSON = "application/vnd.kafka.json.v2+json"
NOT_FOUND = {"error_code": 404, "message": "The specified consumer instance was not found."}
#: A dead replica's consumers must answer well within this on a loaded 2-core machine (a hang would be 30 s+).
DEAD_OWNER_BOUND_S = 10.0


# ------------------------------------------------------------------ configuration (no broker)


def test_forwarding_is_off_unless_replicas_are_configured() -> None:
    assert from_properties({"kafka.bootstrap.servers": "k:9092"}, environ={}).replicas is None


def test_peer_list_and_dns_settings_are_read() -> None:
    config = from_properties({"kafka.bootstrap.servers": "k:9092", "http.port": "8090",
                              "bridge.replicas.peers": "http://10.0.0.1:8080/, https://b.example:8443",
                              "http.allowedHosts": "b.example",
                              "bridge.replicas.connect.timeout.ms": "250"}, environ={}).replicas
    assert config is not None
    assert config.peers == ("http://10.0.0.1:8080", "https://b.example:8443")
    assert config.connect_seconds == 0.25
    dns = from_properties({"kafka.bootstrap.servers": "k:9092", "http.port": "8090",
                           "bridge.replicas.dns": "bridge-headless.ns.svc"}, environ={}).replicas
    assert dns is not None and (dns.dns, dns.port, dns.scheme) == ("bridge-headless.ns.svc", 8090, "http")


@pytest.mark.parametrize(("props", "field"), [
    ({"bridge.replicas.peers": "10.0.0.1:8080"}, "bridge.replicas.peers"),
    ({"bridge.replicas.peers": "http://a:8080/consumers"}, "bridge.replicas.peers"),
    ({"bridge.replicas.peers": "http://a"}, "bridge.replicas.peers"),
    ({"bridge.replicas.peers": "http://a:1", "bridge.replicas.dns": "b"}, "bridge.replicas.dns"),
    # a peer named by host name sends that name as Host: the replicas must be told to accept it
    ({"bridge.replicas.peers": "http://bridge-1.bridge:8080", "http.allowedHosts": "bridge.kafka.svc"},
     "bridge.replicas.peers"),
    ({"bridge.replicas.dns": "b", "bridge.replicas.port": "0"}, "bridge.replicas.port"),
    ({"bridge.replicas.dns": "b", "bridge.replicas.request.timeout.ms": "soon"}, "bridge.replicas.request.timeout.ms"),
    ({"bridge.replicas.dns": "b", "bridge.replicas.unknown": "1"}, "bridge.replicas.unknown"),
])
def test_bad_replica_settings_name_the_key(props: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_properties({"kafka.bootstrap.servers": "k:9092", **props}, environ={})
    assert info.value.field == field


def test_dns_discovery_gives_a_url_per_address_of_the_name() -> None:
    urls = asyncio.run(Peers(ReplicasConfig(dns="localhost", port=8099)).urls())
    assert "http://127.0.0.1:8099" in urls
    assert all(re.fullmatch(r"http://(127\.0\.0\.1|\[::1\]):8099", url) for url in urls), urls
    assert asyncio.run(Peers(ReplicasConfig(dns="no-such-replica.invalid", port=8099)).urls()) == []


# ------------------------------------------------------------------ three bridge processes


@dataclass
class Replica:
    url: str
    proc: subprocess.Popen[bytes]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def replicas(kafka: KafkaEnv, tmp_path: Path) -> Iterator[Callable[..., list[Replica]]]:
    """``replicas(extra_peers=(), **props)``: three bridges, each listing all three (plus ``extra_peers``) as replicas."""
    started: list[Replica] = []

    def start(extra_peers: tuple[str, ...] = (), **props: str) -> list[Replica]:
        urls = [f"http://127.0.0.1:{port}" for port in _free_ports(3)]
        peers = ",".join([*urls, *extra_peers])
        for i, url in enumerate(urls):
            conf = {"kafka.bootstrap.servers": kafka.bootstrap, "http.port": url.rsplit(":", 1)[1],
                    "http.management.port": "-1", "bridge.replicas.peers": peers, **props}
            path = tmp_path / f"bridge-{i}.properties"
            path.write_text("".join(f"{k}={v}\n" for k, v in conf.items()))
            with open(tmp_path / f"bridge-{i}.log", "wb") as out:
                proc = subprocess.Popen([sys.executable, "-m", "triggerfish", "bridge", "--config-file", str(path)],
                                        stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "250"})
            started.append(Replica(url, proc))
        for i, replica in enumerate(started[-3:]):
            log = tmp_path / f"bridge-{i}.log"
            deadline = time.monotonic() + 60
            while "listening on" not in log.read_text():
                assert replica.proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        return started[-3:]

    yield start
    for replica in started:
        replica.proc.kill()
        replica.proc.wait(30)


def _create(http: httpx.Client, replica: Replica, group: str, **body: object) -> str:
    answer = http.post(f"{replica.url}/consumers/{group}", headers=V2,
                       json={"format": "json", "auto.offset.reset": "earliest", "enable.auto.commit": False, **body})
    assert answer.status_code == 200, answer.text
    return f"/consumers/{group}/instances/{answer.json()['instance_id']}"


def _poll_until(http: httpx.Client, url: str, count: int) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    while len(records) < count:
        assert time.monotonic() < deadline, records
        answer = http.get(url + "/records?timeout=1000", headers={"accept": JSON})
        assert answer.status_code == 200, answer.text
        records += answer.json()
    return records


def test_a_consumer_created_on_one_replica_is_used_through_the_others(
        replicas: Callable[..., list[Replica]], make_topic: Callable[..., str], unique_name: Callable[[str], str],
        kafka: KafkaEnv) -> None:
    a, b, c = replicas()
    topic, group = make_topic(partitions=2), unique_name("g")
    with httpx.Client(timeout=60) as http:
        sent = http.post(f"{b.url}/topics/{topic}", headers={"content-type": JSON},
                         json={"records": [{"key": f"k{i}", "value": {"n": i}} for i in range(10)]})
        assert sent.status_code == 200, sent.text
        inst = _create(http, a, group)

        assert http.post(b.url + inst + "/subscription", headers=V2, json={"topics": [topic]}).status_code == 204
        assert http.get(a.url + inst + "/subscription").json()["topics"] == [topic]  # it was A's consumer B subscribed
        records = _poll_until(http, c.url + inst, 10)
        assert sorted(r["value"]["n"] for r in records) == list(range(10))  # type: ignore[index]
        assert http.post(c.url + inst + "/offsets", headers=V2).status_code == 204  # commits what C's polls returned

        check = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group})
        try:
            committed = check.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)
        finally:
            check.close()
        by_partition = {p: sum(1 for r in records if r["partition"] == p) for p in (0, 1)}
        assert {tp.partition: tp.offset for tp in committed} == by_partition

        # the owner's own answers come back unchanged: a poll with the wrong Accept is Strimzi's 406
        wrong = http.get(b.url + inst + "/records", headers={"accept": "application/vnd.kafka.binary.v2+json"})
        assert wrong.status_code == 406, wrong.text
        # a forwarded request is never forwarded again: no loops
        marked = http.get(b.url + inst + "/subscription", headers={FORWARDED: "test"})
        assert (marked.status_code, marked.json()) == (404, NOT_FOUND)

        # a name is unique across the replicas, as on one bridge
        named = _create(http, a, group, name="fixed-name")
        twice = http.post(f"{c.url}/consumers/{group}", headers=V2, json={"name": "fixed-name"})
        assert twice.status_code == 409, twice.text

        assert http.delete(b.url + inst).status_code == 204
        for replica in (a, b, c):
            gone = http.post(replica.url + inst + "/offsets", headers=V2)
            assert (gone.status_code, gone.json()) == (404, NOT_FOUND)
        assert http.delete(c.url + named).status_code == 204
        assert http.get(a.url + named + "/subscription").status_code == 404


@pytest.fixture
def hung_peer() -> Iterator[str]:
    """A replica that takes connections and never answers (a stopped process, a wedged event loop)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # the kernel completes the handshakes; nothing ever reads or answers
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_dead_replicas_consumers_answer_not_found_quickly(
        replicas: Callable[..., list[Replica]], make_topic: Callable[..., str], unique_name: Callable[[str], str],
        hung_peer: str) -> None:
    # with HTTP auth on (replicas pass the client's credentials on), and a listed replica that never
    # answers: neither may hang a request
    a, b, c = replicas(extra_peers=(hung_peer,), **{
        "http.auth.type": "basic", "http.auth.username": "u", "http.auth.password": "p",
        "bridge.replicas.locate.timeout.ms": "1500", "bridge.replicas.request.timeout.ms": "2000"})
    topic, group = make_topic(), unique_name("g")
    with httpx.Client(timeout=60, auth=("u", "p")) as http:
        known = _create(http, a, group)
        unknown = _create(http, a, group)
        assert http.post(b.url + known + "/subscription", headers=V2, json={"topics": [topic]}).status_code == 204

        # a stopped owner takes the connection and never answers: 503 after request.timeout.ms, not a hang
        a.proc.send_signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            stuck = http.get(b.url + known + "/subscription")
            assert stuck.status_code == 503, stuck.text
            assert time.monotonic() - start < DEAD_OWNER_BOUND_S
        finally:
            a.proc.send_signal(signal.SIGCONT)
        assert http.get(b.url + known + "/subscription").json()["topics"] == [topic]  # and it serves again

        a.proc.kill()
        a.proc.wait(30)
        for url in (b.url + known, c.url + known, b.url + unknown):  # remembered by B, and never seen
            start = time.monotonic()
            gone = http.get(url + "/records", headers={"accept": JSON})
            took = time.monotonic() - start
            assert (gone.status_code, gone.json()) == (404, NOT_FOUND)
            assert took < DEAD_OWNER_BOUND_S, took

        # the survivors still serve each other's consumers
        inst = _create(http, b, group)
        assert http.post(c.url + inst + "/subscription", headers=V2, json={"topics": [topic]}).status_code == 204
        assert http.get(b.url + inst + "/subscription").json()["topics"] == [topic]
        unauthorised = httpx.get(c.url + inst + "/subscription")
        assert unauthorised.status_code == 401  # forwarding never lends the replica's trust to a caller
