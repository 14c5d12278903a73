"""CPU per bridge request: a ``GET .../records`` poll driven straight into the ASGI app, no server or socket.

The bridge's app (every middleware, routing, the poll route) serves polls of a consumer assigned to a
pre-filled topic with ``max.poll.records=1``, so each answer holds one record and the time is the
request's own. Prints µs of CPU per request (median of ``--rounds``); run it from two trees (``PYTHONPATH``
at another ``src``) alternately for a before/after pair.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bridge_request.py [--requests 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from triggerfish.bridge.app import create_app
from triggerfish.bridge.config import from_properties
from triggerfish.bridge.services import Services

V2 = b"application/vnd.kafka.v2+json"
JSON = b"application/vnd.kafka.json.v2+json"


async def call(app: Any, method: str, path: str, query: bytes = b"", body: bytes = b"",
               headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"bench"), *(headers or [])],
             "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8080)}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    out: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["body"]


async def run(bootstrap: str, requests: int, rounds: int) -> None:
    topic = f"bench-request-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        fut.result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range((requests + 50) * rounds + 1000):
        p.produce(topic, json.dumps({"n": i}).encode())
        if i % 10000 == 0:
            p.poll(0)
    p.flush(60)
    services = Services.build(from_properties({"kafka.bootstrap.servers": bootstrap, "kafka.consumer.max.poll.records": "1",
                                               "kafka.consumer.auto.offset.reset": "earliest"}))
    services.ready = True
    app = create_app(services)
    try:
        status, body = await call(app, "POST", "/consumers/bench", body=json.dumps({"name": "c", "format": "json"}).encode(),
                                  headers=[(b"content-type", V2)])
        assert status == 200, body
        status, body = await call(app, "POST", "/consumers/bench/instances/c/assignments",
                                  body=json.dumps({"partitions": [{"topic": topic, "partition": 0}]}).encode(),
                                  headers=[(b"content-type", V2)])
        assert status == 204, body
        path = "/consumers/bench/instances/c/records"
        headers = [(b"accept", JSON)]
        got = 0
        while got < 5:  # until records flow
            status, body = await call(app, "GET", path, b"timeout=1000", headers=headers)
            assert status == 200, body
            got += len(json.loads(body))
        results = []
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(requests):
                status, body = await call(app, "GET", path, b"timeout=1000", headers=headers)
                await asyncio.sleep(0)  # the read-ahead's turn
            results.append(1e6 * (time.process_time() - start) / requests)
            assert status == 200, body
        print(f"us/request median {statistics.median(results):.1f}  rounds {[round(r, 1) for r in results]}", flush=True)
    finally:
        await call(app, "DELETE", "/consumers/bench/instances/c")
        services.close()
        for fut in admin.delete_topics([topic]).values():
            fut.result(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or sys.exit("KAFKA_BOOTSTRAP is not set")
    asyncio.run(run(bootstrap, args.requests, args.rounds))


if __name__ == "__main__":
    main()
