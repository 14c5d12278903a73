"""Many replicas, one system: three ``triggerfish run --cluster`` processes on the real broker share their
mapping definitions and status through Kafka; changes made through any replica's API are in force on
every replica; a SIGKILLed replica's partitions move to the others and a rolling restart under load loses
nothing; a replica that loses Kafka says so on /readyz and recovers by itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from esm_helpers import (
    RECORDER,
    delivered,
    function_dict,
    mapping_dict,
    read_invocations,
    wait_until,
    write_config,
    write_handler,
)
from fleet_helpers import Fleet, longest_pause, plain_client, produce_at_rate
from triggerfish import App, localkafka
from triggerfish.cluster.config import ClusterConfig
from triggerfish.config import load
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

#: No other test uses this port base (test_localkafka 19700, test_stages 19710, test_esm_outage 19780).
_PORT_BASE = 19790


def _body(topic: str, bootstrap: str, **fields: Any) -> dict[str, Any]:
    return {"FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
            "MaximumBatchingWindowInSeconds": 0, **fields}


def _config(tmp_path: Path, out: Path, mappings: list[dict[str, Any]]) -> Path:
    code = write_handler(tmp_path, "rec", RECORDER)
    fn = function_dict(code, "rec.handler", Environment={"Variables": {"OUT": str(out)}})
    return write_config(tmp_path / "triggerfish.yaml", [fn], mappings)


def _error_code(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response["Error"]
    return err["Code"], err["Message"]


def _status(cluster: str, bootstrap: str) -> dict[str, Any]:
    shown = subprocess.run([sys.executable, "-m", "triggerfish", "status", "--cluster", cluster,
                            "--cluster-bootstrap", bootstrap, "--json"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    doc: dict[str, Any] = json.loads(shown.stdout)
    return doc


def _change(barrier: threading.Barrier, results: dict[str, Any], name: str, client: Any, uuid: str, size: int) -> None:
    """One of two concurrent updates: the BatchSize it set, or the error code and message it got."""
    barrier.wait()
    try:
        client.update_event_source_mapping(UUID=uuid, BatchSize=size)
        results[name] = size
    except ClientError as exc:
        results[name] = exc.response["Error"]["Code"], exc.response["Error"]["Message"]


def test_any_replica_changes_mappings_for_the_whole_fleet(kafka: KafkaEnv, make_topic, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    declared, created = make_topic(), make_topic(partitions=4)
    config = _config(tmp_path, out, [mapping_dict(declared, kafka.bootstrap, BatchSize=10)])
    cluster = f"t-{uuidlib.uuid4().hex[:8]}"
    fleet = Fleet(config, tmp_path, cluster=cluster, bootstrap=kafka.bootstrap)
    try:
        fleet.start(3)
        one, two, three = fleet.client(1), fleet.client(2), fleet.client(3)
        [file_mapping] = three.list_event_source_mappings()["EventSourceMappings"]

        # created through r1: listed by r3 within 2 s, and records flow through the fleet
        began = time.monotonic()
        uuid = one.create_event_source_mapping(**_body(created, kafka.bootstrap, BatchSize=20))["UUID"]
        wait_until(lambda: any(m["UUID"] == uuid for m in three.list_event_source_mappings()["EventSourceMappings"]),
                   timeout=2, interval=0.02, message="r3 lists the mapping r1 created")
        listed_after = time.monotonic() - began
        # the group spreads the 4 partitions over the 3 replicas (every replica joined it)
        owners = wait_until(
            lambda: (parts := fleet.get(2, uuid).get("TriggerfishFleet", {}).get("Partitions", []))
            and len({p["Partition"] for p in parts}) == 4 and len(owned := {p["Owner"] for p in parts}) == 3
            and owned, timeout=60, message="r2 shows 4 partitions owned by the 3 replicas")
        assert owners == {"r1", "r2", "r3"}
        producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 5})
        for i in range(400):
            producer.produce(created, value=f"c{i}".encode(), partition=i % 4)
        assert producer.flush(30) == 0
        wait_until(lambda: len({(p, o) for p, o, v in delivered(out) if v and v.startswith(b"c")}) == 400,
                   timeout=90, message="400 records through the fleet")
        invoked_by = {inv["ppid"] for inv in read_invocations(out)
                      if any(k.startswith(created + "-") for k in inv["event"]["records"])}
        assert len(invoked_by) == 3, "every replica invoked the function for its partitions"
        wait_until(lambda: all(p["Lag"] == 0 for p in fleet.get(1, uuid)["TriggerfishFleet"]["Partitions"]),
                   timeout=30, message="lag 0 on every partition, seen from r1")
        view = wait_until(lambda: (v := fleet.get(3, uuid))["LastProcessingResult"] == "OK" and v, timeout=10,
                          message=f"OK on r3: {fleet.get(3, uuid)}")
        assert view["State"] == "Enabled"
        assert {r["Id"] for r in view["TriggerfishFleet"]["Replicas"]} == {"r1", "r2", "r3"}
        doc = _status(cluster, kafka.bootstrap)
        assert {r["Id"] for r in doc["Replicas"]} == {"r1", "r2", "r3"}
        shown = {m["UUID"]: m for m in doc["EventSourceMappings"]}
        assert shown[uuid]["State"] == "Enabled" and len(shown[uuid]["Partitions"]) == 4
        assert file_mapping["UUID"] in shown

        # updated through r2: in force on r1 and r3 within 2 s
        wait_until(lambda: two.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", timeout=30)
        two.update_event_source_mapping(UUID=uuid, BatchSize=7)
        for client in (one, three):
            wait_until(lambda c=client: c.get_event_source_mapping(UUID=uuid)["BatchSize"] == 7, timeout=2,
                       interval=0.02, message="the update propagated")

        # the file owns what it declares
        code, message = _error_code(one.update_event_source_mapping, UUID=file_mapping["UUID"], BatchSize=3)
        assert code == "ResourceConflictException" and "config file" in message
        code, _ = _error_code(two.delete_event_source_mapping, UUID=file_mapping["UUID"])
        assert code == "ResourceConflictException"
        code, message = _error_code(three.create_event_source_mapping, **_body(declared, kafka.bootstrap))
        assert code == "ResourceConflictException" and file_mapping["UUID"] in message

        # two replicas change one mapping at once: one wins, the other is told; nobody diverges
        conflicts = 0
        for attempt in range(6):
            for client in (one, two, three):
                wait_until(lambda c=client: c.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", timeout=60)
            barrier, results = threading.Barrier(2), {}
            threads = [threading.Thread(target=_change, args=(barrier, results, "r1", one, uuid, 100 + attempt)),
                       threading.Thread(target=_change, args=(barrier, results, "r3", three, uuid, 200 + attempt))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            won = [v for v in results.values() if isinstance(v, int)]
            lost = [v for v in results.values() if not isinstance(v, int)]
            assert won, results
            for code, message in lost:
                assert code in ("ResourceConflictException", "ResourceInUseException"), (code, message)
                assert uuid in message or "in use" in message
            conflicts += sum(1 for code, _ in lost if code == "ResourceConflictException")
            time.sleep(0.5)
            sizes = {c.get_event_source_mapping(UUID=uuid)["BatchSize"] for c in (one, two, three)}
            assert len(sizes) == 1 and sizes <= set(won), (sizes, results)
            if conflicts:
                break
        assert conflicts, "two concurrent updates never conflicted"

        # deleted through r3: gone everywhere within 2 s
        wait_until(lambda: three.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", timeout=60)
        three.delete_event_source_mapping(UUID=uuid)
        for client in (one, two):
            wait_until(lambda c=client: uuid not in {m["UUID"] for m in c.list_event_source_mappings()["EventSourceMappings"]},
                       timeout=2 + 60, interval=0.05, message="the delete propagated")
        print(f"\nfleet: created on r1, listed on r3 after {listed_after * 1000:.0f} ms; owners {sorted(owners)}")
    finally:
        fleet.stop()


def test_sigkill_and_rolling_restart_under_load_lose_nothing(kafka: KafkaEnv, admin: AdminClient, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    topic = f"fleet-load-{uuidlib.uuid4().hex[:8]}"
    partitions = 6
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    config = _config(tmp_path, out, [mapping_dict(topic, kafka.bootstrap, BatchSize=100,
                                                  MaximumBatchingWindowInSeconds=0)])
    cluster = f"t-{uuidlib.uuid4().hex[:8]}"
    fleet = Fleet(config, tmp_path, cluster=cluster, bootstrap=kafka.bootstrap)
    stop, sent = threading.Event(), []
    try:
        fleet.start(3)
        [mapping] = fleet.client(1).list_event_source_mappings()["EventSourceMappings"]
        wait_until(lambda: len(fleet.get(1, mapping["UUID"])["TriggerfishFleet"]["Partitions"]) == partitions,
                   timeout=30, message="every partition owned")
        producer = produce_at_rate(kafka.bootstrap, topic, 2000, stop, sent)
        time.sleep(5)

        # SIGKILL r2: its partitions are consumed by r1/r3 within the session timeout (10 s) + 10 s
        owned_by_r2 = {p["Partition"] for p in fleet.get(1, mapping["UUID"])["TriggerfishFleet"]["Partitions"]
                       if p["Owner"] == "r2"}
        killed_at = time.time()
        fleet.kill(2)
        wait_until(lambda: "r2" not in {r["Id"] for r in fleet.get(1, mapping["UUID"])["TriggerfishFleet"]["Replicas"]},
                   timeout=10 + 3, interval=0.2, message="r2 gone from status within one session timeout")
        gone_after = time.time() - killed_at
        time.sleep(22)
        kill_pause = longest_pause(out, partitions, killed_at - 1, time.time())
        fleet.restart(2)

        # rolling restart: SIGTERM one at a time, each back and ready before the next
        rolled_at = time.time()
        for i in (1, 2, 3):
            assert fleet.terminate(i) == 0
            fleet.restart(i)
        time.sleep(5)
        rolled_until = time.time()
        roll_pause = longest_pause(out, partitions, rolled_at, rolled_until)
        stop.set()
        producer.join(90)
        [total] = sent
        wait_until(lambda: len({(p, o) for p, o, _ in delivered(out)}) >= total, timeout=120,
                   message=f"all {total} records delivered")
        seen = Counter((p, o) for p, o, _ in delivered(out))
        values = {v for _, _, v in delivered(out)}
        lost = sum(1 for n in range(total) if f"v{n}".encode() not in values)
        duplicated = sum(c - 1 for c in seen.values())
        print(f"\nfleet under 2,000 records/s: {total} produced, lost {lost}, duplicated {duplicated}; "
              f"r2 (owned {sorted(owned_by_r2)}) gone from status {gone_after:.1f} s after SIGKILL; longest "
              f"partition pause {kill_pause:.1f} s around the SIGKILL, {roll_pause:.1f} s in the rolling restart")
        assert lost == 0
        assert kill_pause <= 10 + 10, kill_pause
        assert roll_pause <= 15, roll_pause
    finally:
        stop.set()
        fleet.stop()


def test_a_replica_that_loses_kafka_is_not_ready_and_recovers(tmp_path: Path) -> None:
    env = localkafka.up(_PORT_BASE)
    try:
        topic = f"fleet-outage-{uuidlib.uuid4().hex[:8]}"
        admin = AdminClient(env.plaintext())
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        out = tmp_path / "out.jsonl"
        config = _config(tmp_path, out, [mapping_dict(topic, env.bootstrap)])
        cluster = ClusterConfig.from_dict({"Name": f"t-{uuidlib.uuid4().hex[:8]}", "BootstrapServers": [env.bootstrap]})
        with App.from_project(load(config), port=0, cluster=cluster) as app:
            assert app.url is not None
            ready = lambda: httpx.get(f"{app.url}/readyz", timeout=5).status_code  # noqa: E731
            wait_until(lambda: ready() == 200, timeout=60, message="ready")
            assert localkafka.down(_PORT_BASE, keep_data=True)
            wait_until(lambda: ready() == 503, timeout=30, message="not ready without Kafka")
            body = httpx.get(f"{app.url}/readyz", timeout=5).json()
            assert body["ready"] is False
            assert httpx.get(f"{app.url}/healthz", timeout=5).status_code == 200, "liveness is not readiness"
            localkafka.up(_PORT_BASE)
            try:
                wait_until(lambda: ready() == 200, timeout=90, message="ready again by itself")
            except AssertionError:
                raise AssertionError(httpx.get(f"{app.url}/readyz", timeout=5).text) from None
            plain_client(app.url).list_event_source_mappings()
    finally:
        localkafka.down(_PORT_BASE)
