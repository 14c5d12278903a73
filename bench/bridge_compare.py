"""Side-by-side benchmark: triggerfish's bridge vs the real Strimzi Kafka Bridge, same broker, same run.

For each bridge (started as its own process, one after the other, against the same local broker):
  produce   POST /topics/<t> with 100 JSON records of ~1 KB each, from 1, 16 and 64 concurrent
            httpx async clients (keep-alive), for a fixed time each; records/s, p50/p99 latency
  consume   one consumer instance (json format) polls the produced records back; records/s
  memory    peak RSS (VmHWM) of the bridge process and RSS at the end

Strimzi comes from ~/.cache/triggerfish/strimzi-bridge/<version>/libs (bench/bridge_fetch_strimzi.py
fills it from Maven Central) or --strimzi-libs DIR (e.g. the libs/ of the release tarball). Without
it only triggerfish is measured and the report says so.

    .venv/bin/python bench/bridge_compare.py [--seconds 8] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from triggerfish import localkafka
from triggerfish.localkafka.jars import cache_root

JSON_TYPE = "application/vnd.kafka.json.v2+json"
V2 = "application/vnd.kafka.v2+json"
CONCURRENCY = (1, 16, 64)
STRIMZI_VERSION = "0.32.0"


@dataclass
class ProduceResult:
    clients: int
    requests: int
    records_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class BridgeResult:
    name: str
    produce: list[ProduceResult] = field(default_factory=list)
    consume_records_per_s: float = 0.0
    consumed: int = 0
    peak_rss_mb: float = 0.0
    end_rss_mb: float = 0.0
    idle_rss_mb: float = 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def payload(records: int = 100, size: int = 1024) -> bytes:
    filler = "x" * (size - 60)
    body = {"records": [{"key": f"k{i}", "value": {"id": i, "data": filler}} for i in range(records)]}
    return json.dumps(body).encode()


def properties(port: int, mgmt: int, bootstrap: str) -> str:
    return (
        f"bridge.id=bench\nhttp.host=127.0.0.1\nhttp.port={port}\nhttp.management.port={mgmt}\n"
        f"kafka.bootstrap.servers={bootstrap}\nkafka.producer.acks=1\n"
        "kafka.consumer.auto.offset.reset=earliest\nhttp.consumer.enabled=true\nhttp.producer.enabled=true\n"
    )


def start_triggerfish(workdir: Path, bootstrap: str) -> tuple[subprocess.Popen[bytes], str]:
    port, mgmt = free_port(), free_port()
    cfg = workdir / "triggerfish.properties"
    cfg.write_text(properties(port, mgmt, bootstrap))
    exe = Path(sys.executable).with_name("triggerfish")
    proc = subprocess.Popen([str(exe), "bridge", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=open(workdir / "triggerfish.log", "wb"))
    return proc, f"http://127.0.0.1:{port}"


def start_strimzi(workdir: Path, bootstrap: str, libs: Path) -> tuple[subprocess.Popen[bytes], str]:
    port, mgmt = free_port(), free_port()
    cfg = workdir / "strimzi.properties"
    cfg.write_text(properties(port, mgmt, bootstrap))
    log4j = workdir / "log4j2.properties"
    log4j.write_text("rootLogger.level=WARN\nrootLogger.appenderRef.console.ref=STDOUT\n"
                     "appender.console.type=Console\nappender.console.name=STDOUT\n"
                     "appender.console.layout.type=PatternLayout\nappender.console.layout.pattern=%m%n\n")
    cmd = ["java", f"-Dlog4j2.configurationFile=file:{log4j}", f"-Dvertx.cacheDirBase={workdir}/vertx-cache",
           "-cp", f"{libs}/*", "io.strimzi.kafka.bridge.Application", f"--config-file={cfg}"]
    proc = subprocess.Popen(cmd, stdout=open(workdir / "strimzi.log", "wb"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bridge at {url} exited with {proc.returncode}")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"bridge at {url} did not answer within {timeout}s")


async def _produce_share(url: str, topic: str, clients: int, seconds: float, body: bytes) -> tuple[list[float], int, float]:
    """``clients`` independent keep-alive clients (one connection each) posting until the deadline."""
    latencies: list[float] = []
    errors = 0
    headers = {"content-type": JSON_TYPE}
    https = [httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)) for _ in range(clients)]
    try:
        # warm up every connection (Strimzi creates a producer per connection on first use)
        await asyncio.gather(*(h.post(f"/topics/{topic}", content=body, headers=headers) for h in https))
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(http: httpx.AsyncClient) -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await http.post(f"/topics/{topic}", content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200 or b'"error_code"' in r.content:
                    errors += 1

        await asyncio.gather(*(worker(h) for h in https))
        elapsed = time.perf_counter() - start
    finally:
        await asyncio.gather(*(h.aclose() for h in https))
    return latencies, errors, elapsed


def _share(args: tuple[str, str, int, float, bytes]) -> tuple[list[float], int, float]:
    return asyncio.run(_produce_share(*args))


def produce(url: str, topic: str, clients: int, seconds: float, body: bytes, procs: int) -> ProduceResult:
    """Split the clients over ``procs`` load processes so the Python load generator is not the limit."""
    procs = max(1, min(procs, clients))
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    with ProcessPoolExecutor(procs) as pool:
        parts = list(pool.map(_share, [(url, topic, n, seconds, body) for n in shares]))
    lat = sorted(x for p in parts for x in p[0])
    errors = sum(p[1] for p in parts)
    elapsed = max(p[2] for p in parts)
    return ProduceResult(clients, len(lat), round(len(lat) * 100 / elapsed), round(statistics.median(lat) * 1000, 1),
                         round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1), errors)


def native_produce(bootstrap: str, topic: str, seconds: float, wait_every: int | None) -> float:
    """The same records straight through confluent-kafka (no HTTP): the ceiling for any bridge here."""
    from confluent_kafka import Producer

    values = [json.dumps({"id": i, "data": "x" * (1024 - 60)}).encode() for i in range(100)]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1"})
    sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i, v in enumerate(values):
            while True:
                try:
                    producer.produce(topic, v, key=f'"k{i}"'.encode())
                    break
                except BufferError:
                    producer.poll(0.01)
        sent += len(values)
        if wait_every:
            producer.flush()  # like one synchronous HTTP request: wait for its 100 acks
        else:
            producer.poll(0)
    producer.flush()
    return sent / (time.perf_counter() - start)


def consume(url: str, topic: str, want: int, limit_s: float) -> tuple[int, float]:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.post(f"/consumers/{group}", json={"name": "c", "format": "json", "auto.offset.reset": "earliest",
                                                   "enable.auto.commit": False}, headers={"content-type": V2})
        r.raise_for_status()
        base = f"/consumers/{group}/instances/c"
        http.post(base + "/subscription", json={"topics": [topic]}, headers={"content-type": V2}).raise_for_status()
        got = 0
        start = None
        deadline = time.monotonic() + limit_s
        while got < want and time.monotonic() < deadline:
            r = http.get(base + "/records", params={"timeout": 1000}, headers={"accept": JSON_TYPE})
            r.raise_for_status()
            n = len(r.json())
            if n and start is None:
                start = time.perf_counter()  # group join is not part of the throughput
            got += n
        elapsed = time.perf_counter() - (start or time.perf_counter())
        http.delete(base)
    return got, (got / elapsed if elapsed > 0 else 0.0)


def run_one(name: str, proc: subprocess.Popen[bytes], url: str, topic: str, seconds: float, procs: int) -> BridgeResult:
    result = BridgeResult(name)
    try:
        wait_up(url, proc)
        time.sleep(1)
        result.idle_rss_mb = round(rss_mb(proc.pid), 1)
        body = payload()
        produced = 0
        for clients in CONCURRENCY:
            res = produce(url, topic, clients, seconds, body, procs)
            produced += res.requests * 100
            print(f"  {name:11} produce c={clients:<3} {res.records_per_s:>8} rec/s  p50 {res.p50_ms} ms  "
                  f"p99 {res.p99_ms} ms  errors {res.errors}", flush=True)
            result.produce.append(res)
        result.consumed, rate = consume(url, topic, min(produced, 200_000), limit_s=seconds * 3)
        result.consume_records_per_s = round(rate)
        print(f"  {name:11} consume {result.consumed} records at {result.consume_records_per_s} rec/s", flush=True)
        result.peak_rss_mb = round(rss_mb(proc.pid, "VmHWM"), 1)
        result.end_rss_mb = round(rss_mb(proc.pid), 1)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result


def markdown(results: list[BridgeResult], strimzi_note: str) -> str:
    lines = ["| bridge | clients | records/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    for r in results:
        for p in r.produce:
            lines.append(f"| {r.name} | {p.clients} | {p.records_per_s} | {p.p50_ms} | {p.p99_ms} | {p.errors} |")
    lines += ["", "| bridge | consume records/s | idle RSS MB | peak RSS MB | end RSS MB |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.consume_records_per_s} | {r.idle_rss_mb} | {r.peak_rss_mb} | {r.end_rss_mb} |")
    if len(results) == 2:
        ours, theirs = results
        ratios = [f"{p.clients}: {p.records_per_s / max(1, q.records_per_s):.2f}x" for p, q in zip(ours.produce, theirs.produce, strict=False)]
        lines += ["", "throughput ratio (triggerfish / Strimzi) by clients: " + ", ".join(ratios),
                  f"consume ratio: {ours.consume_records_per_s / max(1, theirs.consume_records_per_s):.2f}x",
                  f"peak memory ratio: {ours.peak_rss_mb / max(1, theirs.peak_rss_mb):.2f}x"]
    if strimzi_note:
        lines += ["", strimzi_note]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each produce step")
    parser.add_argument("--strimzi-libs", type=Path, default=cache_root() / "strimzi-bridge" / STRIMZI_VERSION / "libs")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--load-procs", type=int, default=2, help="load-generator processes (default 2)")
    args = parser.parse_args()

    env = localkafka.up()
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(env.plaintext())
    topics = {n: f"bench-bridge-{n}-{uuid.uuid4().hex[:6]}" for n in ("triggerfish", "strimzi")}
    for fut in admin.create_topics([NewTopic(t, 3, 1) for t in topics.values()]).values():
        fut.result(30)
    workdir = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    results: list[BridgeResult] = []
    native: dict[str, float] = {}
    note = ""
    try:
        print(f"cpus={os.cpu_count()} broker={env.bootstrap} seconds/step={args.seconds}", flush=True)
        native = {"sequential (flush per 100)": native_produce(env.bootstrap, topics["triggerfish"], args.seconds, 100),
                  "pipelined": native_produce(env.bootstrap, topics["triggerfish"], args.seconds, None)}
        for label, rate in native.items():
            print(f"  native confluent-kafka producer, {label}: {rate:.0f} rec/s", flush=True)
        proc, url = start_triggerfish(workdir, env.bootstrap)
        results.append(run_one("triggerfish", proc, url, topics["triggerfish"], args.seconds, args.load_procs))
        if any(args.strimzi_libs.glob("kafka-bridge-*.jar")) and shutil.which("java"):
            proc, url = start_strimzi(workdir, env.bootstrap, args.strimzi_libs)
            results.append(run_one("strimzi", proc, url, topics["strimzi"], args.seconds, args.load_procs))
        else:
            note = (f"Strimzi bridge not measured: no kafka-bridge jar in {args.strimzi_libs} "
                    "(run bench/bridge_fetch_strimzi.py, or pass --strimzi-libs with the release's libs/).")
    finally:
        for fut in admin.delete_topics(list(topics.values())).values():
            try:
                fut.result(30)
            except Exception:
                pass
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(markdown(results, note))
    print("\nnative confluent-kafka producer in the same run (no HTTP): "
          + ", ".join(f"{label} {rate:.0f} rec/s" for label, rate in native.items()))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
