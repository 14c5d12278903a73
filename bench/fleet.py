"""Fleet benchmarks: three ``triggerfish run --cluster`` replicas on the local broker.

    .venv/bin/python bench/fleet.py [--rounds 5] [--rate 2000] [--mappings 50]

create -> first invocation   CreateEventSourceMapping on r1 of a topic holding records, until the first
                             invocation anywhere in the fleet (the handler's clock), and until r2 and r3
                             list the mapping; --rounds times
rolling restart              records produced at --rate per second on 6 partitions; r1, r2, r3 are
                             SIGTERMed and started again one at a time (each ready before the next);
                             the longest time any partition went without an invocation, records lost
                             and duplicated
idle memory                  RSS of each replica's engine process and of its function workers, idle,
                             with 1 mapping and with --mappings mappings (one topic each)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from esm_helpers import RECORDER, delivered, function_dict, read_invocations, wait_until, write_config, write_handler  # noqa: E402
from fleet_helpers import Fleet, longest_pause, produce_at_rate  # noqa: E402
from triggerfish import localkafka  # noqa: E402


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _memory(fleet: Fleet) -> list[dict[str, float]]:
    out = []
    for name, replica in sorted(fleet.replicas.items()):
        engine = _rss_kb(replica.proc.pid)
        workers = sum(_rss_kb(c) for c in _children(replica.proc.pid))
        out.append({"replica": f"r{name}", "engine_mb": engine / 1024, "workers_mb": workers / 1024})
    return out


def _body(topic: str, bootstrap: str, **fields: Any) -> dict[str, Any]:
    return {"FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
            "MaximumBatchingWindowInSeconds": 0, **fields}


def _topic(admin: AdminClient, partitions: int) -> str:
    name = f"bench-fleet-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def create_to_invocation(fleet: Fleet, admin: AdminClient, bootstrap: str, out: Path, rounds: int) -> dict[str, Any]:
    first, listed = [], []
    producer = Producer({"bootstrap.servers": bootstrap})
    for _ in range(rounds):
        topic = _topic(admin, 4)
        for i in range(10):
            producer.produce(topic, value=b"x", partition=i % 4)
        producer.flush(30)
        began = time.time()
        uuid_ = fleet.client(1).create_event_source_mapping(**_body(topic, bootstrap))["UUID"]
        wait_until(lambda u=uuid_: all(u in {m["UUID"] for m in fleet.client(i).list_event_source_mappings()
                                             ["EventSourceMappings"]} for i in (2, 3)), timeout=30, interval=0.02)
        listed.append(time.time() - began)

        def invoked(t: str = topic) -> float | None:
            times = [inv["t"] for inv in read_invocations(out) if any(k.startswith(t + "-") for k in inv["event"]["records"])]
            return min(times) if times else None

        first.append(wait_until(invoked, timeout=60, interval=0.02) - began)
        fleet.client(1).delete_event_source_mapping(UUID=uuid_)
    return {"rounds": rounds, "first_invocation_s": {"median": statistics.median(first), "max": max(first)},
            "listed_on_r2_r3_s": {"median": statistics.median(listed), "max": max(listed)}}


def rolling_restart(fleet: Fleet, admin: AdminClient, bootstrap: str, out: Path, rate: int) -> dict[str, Any]:
    topic = _topic(admin, 6)
    uuid_ = fleet.client(1).create_event_source_mapping(**_body(topic, bootstrap, BatchSize=100))["UUID"]
    wait_until(lambda: len(fleet.get(1, uuid_).get("TriggerfishFleet", {}).get("Partitions", [])) == 6, timeout=60)
    stop, sent = threading.Event(), []
    producer = produce_at_rate(bootstrap, topic, rate, stop, sent)
    time.sleep(5)
    began = time.time()
    for i in (1, 2, 3):
        fleet.terminate(i)
        fleet.restart(i)
    time.sleep(5)
    ended = time.time()
    stop.set()
    producer.join(90)
    [total] = sent

    def rows() -> list[tuple[int, int, bytes | None]]:
        return [r for r in delivered(out) if r[2] is not None and r[2].startswith(b"v")]

    wait_until(lambda: len({(p, o) for p, o, _ in rows()}) >= total, timeout=120)
    seen = Counter((p, o) for p, o, _ in rows())
    values = {v for _, _, v in rows()}
    fleet.client(1).delete_event_source_mapping(UUID=uuid_)
    return {"rate": rate, "produced": total, "lost": sum(1 for n in range(total) if f"v{n}".encode() not in values),
            "duplicated": sum(c - 1 for c in seen.values()),
            "longest_partition_pause_s": longest_pause(out, 6, began, ended), "restart_window_s": ended - began}


def idle_memory(fleet: Fleet, admin: AdminClient, bootstrap: str, mappings: int) -> dict[str, Any]:
    uuids = [fleet.client(1).create_event_source_mapping(**_body(_topic(admin, 1), bootstrap))["UUID"]]
    time.sleep(15)
    one = _memory(fleet)
    for _ in range(mappings - 1):
        uuids.append(fleet.client(1).create_event_source_mapping(**_body(_topic(admin, 1), bootstrap))["UUID"])
    wait_until(lambda: all(fleet.get(3, u)["State"] == "Enabled" for u in uuids), timeout=300, interval=1)
    time.sleep(15)
    many = _memory(fleet)
    for u in uuids:
        fleet.client(1).delete_event_source_mapping(UUID=u)
    return {"1": one, str(mappings): many}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--mappings", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    env = localkafka.up()
    admin = AdminClient(env.plaintext())
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        out = directory / "out.jsonl"
        code = write_handler(directory, "rec", RECORDER)
        fn = function_dict(code, "rec.handler", Environment={"Variables": {"OUT": str(out)}})
        config = write_config(directory / "triggerfish.yaml", [fn], [])
        fleet = Fleet(config, directory, cluster=f"bench-{uuid.uuid4().hex[:8]}", bootstrap=env.bootstrap)
        try:
            fleet.start(3)
            results = {
                "create_to_first_invocation": create_to_invocation(fleet, admin, env.bootstrap, out, args.rounds),
                "rolling_restart": rolling_restart(fleet, admin, env.bootstrap, out, args.rate),
                "idle_memory": idle_memory(fleet, admin, env.bootstrap, args.mappings),
            }
        finally:
            fleet.stop()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
