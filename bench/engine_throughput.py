"""ESM engine benchmarks against a real broker: throughput next to a plain confluent-kafka loop, and
produce-to-handler latency at a fixed rate.

    .venv/bin/python bench/engine_throughput.py                       # both, defaults below
    .venv/bin/python bench/engine_throughput.py --records 200000 --partitions 4 --rate 1000 --seconds 20
    .venv/bin/python bench/engine_throughput.py --records 200000 --partitions 4 --skip-latency --pairs 5

Throughput: N records of --size bytes are produced first; then four readers of the same topic,
each with a fresh group: (a) a bare consumer loop (``consume(1000)``, counting bytes, no processing:
the upper bound, the issue's "plain confluent-kafka consumer loop"), (a') confluent-kafka's basic loop,
one ``poll()`` per record, counting bytes (what its README shows), (b) a hand-written loop doing
what a user would write without triggerfish (build the same Lambda-shaped event per batch of 1000,
call the same no-op handler in-process, commit after each batch) and (c) triggerfish with that
handler, BatchSize 1000. All are timed from the first record delivered (first invoke completed) to
the last, so group joins are excluded.
Latency: records produced at --rate per second carry their send time; the handler (window 0)
records now - send time for each record.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from proc_cpu import children_cpu, threads_cpu  # bench/ is on sys.path
from triggerfish import localkafka
from triggerfish.esm import partitions
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.engine import Engine
from triggerfish.esm.store import Store
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime

HANDLERS = """
import json, os, time

def noop(event, context):
    return None

def latency(event, context):
    now = time.time_ns()
    lines = []
    for records in event["records"].values():
        for r in records:
            lines.append(f"{r['timestamp']}:{(now - r['timestamp'] * 1_000_000) / 1e6}")
    fd = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, ("\\n".join(lines) + "\\n").encode())
    os.close(fd)
"""


def make_topic(admin: AdminClient, partitions: int) -> str:
    name = f"bench-esm-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    return name


def produce(bootstrap: str, topic: str, records: int, size: int, partitions: int = 1) -> float:
    """Round-robin over partitions, so each holds whole batches of 1000 (no partial last batch
    left waiting for its window at the end of the run)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                         "compression.type": "none", "queue.buffering.max.kbytes": 1_048_576})
    value = b"x" * size
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, value, key=str(i % 64).encode(), partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(120)
    return time.perf_counter() - started


CPU: list[float] = []
PLAIN_CPU: list[float] = []
HANDWRITTEN_CPU: list[float] = []
LATENCY_ACKS: list[float] = []
#: Seconds to wait after warming the workers, before the CPU window opens (--warm-wait).
WARM_WAIT: list[float] = [0.0]


def print_threads(who: str, before: dict[str, float], after: dict[str, float], records: int) -> None:
    """CPU microseconds per record of each thread of this process between two ``threads_cpu()`` readings."""
    by_thread = {name: round((cpu - before.get(name, 0.0)) / records * 1e6, 2) for name, cpu in after.items()}
    print(f"{who} CPU per record by thread (us):",
          dict(sorted(((n, v) for n, v in by_thread.items() if v > 0), key=lambda kv: -kv[1])), file=sys.stderr)


def plain_loop(bootstrap: str, topic: str, records: int) -> tuple[float, int]:
    """Seconds from first to last record and bytes read, with a bare consumer loop."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"plain-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    before, before_threads = os.times(), threads_cpu()
    seen = nbytes = 0
    first = None
    while seen < records:
        for msg in consumer.consume(1000, 1.0):
            if msg.error():
                continue
            if first is None:
                first = time.perf_counter()  # time the records after the first
            seen += 1
            nbytes += len(msg.value())
    elapsed = time.perf_counter() - (first or time.perf_counter())
    after = os.times()
    PLAIN_CPU[:] = [(after.user + after.system - before.user - before.system) / records * 1e6]
    print_threads("bare loop", before_threads, threads_cpu(), records)
    consumer.close()
    return elapsed, nbytes


def poll_loop(bootstrap: str, topic: str, records: int) -> tuple[float, int]:
    """Seconds from first to last record and bytes read, with confluent-kafka's basic one-``poll()``-per-record
    loop (the loop of its README and getting-started guide), counting bytes, no processing."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"poll-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = nbytes = 0
    first = None
    while seen < records:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        if first is None:
            first = time.perf_counter()
        seen += 1
        nbytes += len(msg.value())
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return elapsed, nbytes


def handwritten_loop(bootstrap: str, topic: str, records: int, code: Path) -> tuple[float, int]:
    """What a user writes without triggerfish: consume batches of 1000, build the same Lambda-shaped
    event (base64 key and value, headers as signed bytes), call the same no-op handler in-process,
    commit after each batch. No worker process, so no timeout, crash isolation or retries."""
    sys.path.insert(0, str(code))
    import handlers  # noqa: PLC0415 - the benchmark's generated handler module

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"handwritten-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    types = {1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}
    before = os.times()
    seen = nbytes = 0
    first = None
    while seen < records:
        batch = consumer.consume(1000, 1.0)
        groups: dict[str, list[dict]] = {}
        for msg in batch:
            if msg.error():
                continue
            if first is None:
                first = time.perf_counter()
            ts_type, ts = msg.timestamp()
            key, value, headers = msg.key(), msg.value(), msg.headers()
            record = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "timestamp": ts,
                      "timestampType": types.get(ts_type, "NO_TIMESTAMP_TYPE")}
            if key is not None:
                record["key"] = base64.b64encode(key).decode()
            record["value"] = None if value is None else base64.b64encode(value).decode()
            record["headers"] = [{k: [b - 256 if b > 127 else b for b in (v or b"")]} for k, v in headers or ()]
            groups.setdefault(f"{msg.topic()}-{msg.partition()}", []).append(record)
            seen += 1
            nbytes += len(value or b"")
        if groups:
            handlers.noop({"eventSource": "SelfManagedKafka", "bootstrapServers": bootstrap, "records": groups}, None)
            consumer.commit(asynchronous=True)  # after the handler returned: at-least-once
    elapsed = time.perf_counter() - (first or time.perf_counter())
    after = os.times()
    HANDWRITTEN_CPU[:] = [(after.user + after.system - before.user - before.system) / records * 1e6]
    consumer.close()
    return elapsed, nbytes


def engine_run(bootstrap: str, topic: str, records: int, code: Path, state: Path,
               partitions: int = 1, batch_size: int = 1000, window: int = 1) -> tuple[float, int, int]:
    """Seconds from the first completed invoke to the last record, records timed, invocations timed."""
    runtime = FunctionRuntime([FunctionConfig.from_dict({"FunctionName": "noop", "CodeUri": str(code),
                                                         "Handler": "handlers.noop"})])
    engine = Engine(runtime, Store(state / "state.db"))
    mapping = MappingConfig.from_dict({
        "FunctionName": "noop", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": batch_size,
        "MaximumBatchingWindowInSeconds": window,
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}}})
    # one warm worker per partition (4 by default; concurrency is 8): steady state, not interpreter starts
    runtime.warm("noop", partitions)
    time.sleep(WARM_WAIT[0])  # warm() does not wait: without this, the workers' start-up counts as theirs per record
    before, before_workers, before_threads = os.times(), children_cpu(), threads_cpu()
    (view,) = engine.load([mapping])
    engine.start()
    runner_status = lambda: engine._entries[view.uuid].status  # noqa: E731 - live counters, no snapshot copy
    while runner_status().records == 0:
        time.sleep(0.002)
    first, base, base_invocations = time.perf_counter(), runner_status().records, runner_status().invocations
    while runner_status().records < records:
        time.sleep(0.01)  # (a tighter loop here steals the GIL from the engine's threads it measures)
    elapsed = time.perf_counter() - first
    invocations = runner_status().invocations
    timed_invocations = invocations - base_invocations
    print(f"engine: {invocations} invocations, {engine.runner(view.uuid).pauses} partition pauses", file=sys.stderr)
    threads = threads_cpu()
    engine.stop()
    after, workers = os.times(), children_cpu() - before_workers
    print_threads("engine", before_threads, threads, records)
    runtime.close()  # reaps the workers: os.times() then has their whole lives, interpreter start included
    reaped = os.times()
    with_start = reaped.children_user + reaped.children_system - before.children_user - before.children_system
    own = after.user + after.system - before.user - before.system
    print(f"CPU per record: engine process {own / records * 1e6:.1f} us, handler workers {workers / records * 1e6:.1f} us"
          f" ({with_start / records * 1e6:.1f} us with their start-up)", file=sys.stderr)
    CPU[:] = [own / records * 1e6, workers / records * 1e6, with_start / records * 1e6]
    return elapsed, records - base, timed_invocations


def latency_run(bootstrap: str, topic: str, rate: int, seconds: float, code: Path, state: Path) -> list[float]:
    out = state / "latency.txt"
    runtime = FunctionRuntime([FunctionConfig.from_dict({
        "FunctionName": "lat", "CodeUri": str(code), "Handler": "handlers.latency",
        "Environment": {"Variables": {"OUT": str(out)}}})])
    engine = Engine(runtime, Store(state / "state-lat.db"))
    mapping = MappingConfig.from_dict({
        "FunctionName": "lat", "Topics": [topic], "StartingPosition": "LATEST", "BatchSize": 1000,
        "MaximumBatchingWindowInSeconds": 0,
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}}})
    runtime.warm("lat")
    (view,) = engine.load([mapping])
    engine.start()
    runner = None
    while runner is None or not runner._parts:
        time.sleep(0.05)
        runner = engine.runner(view.uuid)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    # Warm up: the producer's connection and metadata, the consumer's fetch position, the worker.
    for _ in range(20):
        producer.produce(topic, b"warm-up")
        producer.flush(10)
        time.sleep(0.05)
    time.sleep(1.0)
    measured_from = int(time.time() * 1000) + 1
    time.sleep(0.002)
    total = int(rate * seconds)
    acks: list[tuple[int, float]] = []  # (send time, ms until the broker acknowledged it)
    started = time.perf_counter()
    for i in range(total):
        target = started + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        # the record's CreateTime is its send time in ms; the handler subtracts it from its own clock
        sent_ms = int(time.time() * 1000)
        producer.produce(topic, b"x" * 1024, timestamp=sent_ms,
                         on_delivery=lambda err, msg, sent_ms=sent_ms: acks.append((sent_ms, time.time() * 1000 - sent_ms)))
        producer.poll(0)
    producer.flush(30)
    deadline = time.time() + 30
    while time.time() < deadline:
        if out.exists() and len(out.read_text().split()) >= total + 20:
            break
        time.sleep(0.1)
    engine.stop()
    runtime.close()
    pairs = [p for p in (line.split(":") for line in out.read_text().split()) if int(p[0]) >= measured_from]
    start_ms = min(int(ts) for ts, _ in pairs)
    spikes = sorted(((float(lat), int(ts)) for ts, lat in pairs), reverse=True)[:15]
    print("slowest (ms, ms after the first send):", [(round(lat), ts - start_ms) for lat, ts in spikes], file=sys.stderr)
    # Was the broker itself slow then? The producer's acknowledgement time for the same send times.
    ack_by_ts = {ts: ack for ts, ack in acks}
    print("  broker ack time (ms) of those records:", [round(ack_by_ts.get(ts, -1)) for _, ts in spikes], file=sys.stderr)
    LATENCY_ACKS[:] = sorted(a for _, a in acks)
    return [float(lat) for _, lat in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--engine-only", action="store_true",
                        help="throughput of the engine alone, without the three loops (for profiling it)")
    parser.add_argument("--pairs", type=int, default=1, metavar="N",
                        help="N (bare loop, engine) pairs on the same records, each ratio and the median reported")
    parser.add_argument("--small", type=int, default=0, metavar="N",
                        help="also N records through BatchSize 1, window 0 on --partitions partitions: invocations/s")
    parser.add_argument("--switch-interval", type=float, default=None, metavar="S",
                        help="sys.setswitchinterval(S) in the engine process (an experiment; Python's default 0.005)")
    parser.add_argument("--pause-batches", type=int, default=None, metavar="N",
                        help="esm.partitions.PAUSE_BATCHES for this run (an experiment: flow control's threshold)")
    parser.add_argument("--warm-wait", type=float, default=2.0, metavar="S",
                        help="wait S s after starting the workers (default 2): the engine is timed warm, as the bare"
                             " loop is, without the workers' interpreter start-up (~0.1 s CPU each, inside a 200k-record"
                             " run's 0.6-1 s); 0 = time it with their start-up, as before session 4 of issue 23")
    args = parser.parse_args()
    WARM_WAIT[0] = args.warm_wait
    if args.pause_batches is not None:
        partitions.PAUSE_BATCHES = args.pause_batches
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)

    env = localkafka.up()
    admin = AdminClient(env.plaintext())
    results: dict = {"records": args.records, "size": args.size, "partitions": args.partitions}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        code = tmpdir / "code"
        code.mkdir()
        (code / "handlers.py").write_text(textwrap.dedent(HANDLERS))
        if not args.skip_throughput:
            topic = make_topic(admin, args.partitions)
            took = produce(env.bootstrap, topic, args.records, args.size, args.partitions)
            print(f"produced {args.records} x {args.size} B in {took:.1f} s", file=sys.stderr)
            if args.engine_only:
                eng_s, eng_records, _ = engine_run(env.bootstrap, topic, args.records, code, tmpdir, args.partitions)
                print(json.dumps({"engine_records_per_s": round(eng_records / eng_s), "cpu_us_per_record": CPU}))
                admin.delete_topics([topic])  # (a run leaves 200 MB-1 GB on the broker's disk otherwise)
                return
            plain_s, nbytes = plain_loop(env.bootstrap, topic, args.records)
            poll_s, _ = poll_loop(env.bootstrap, topic, args.records)
            hand_s, _ = handwritten_loop(env.bootstrap, topic, args.records, code)
            eng_s, eng_records, invocations = engine_run(env.bootstrap, topic, args.records, code, tmpdir, args.partitions)
            mb = args.size * 1 / 1e6
            plain_rps = (args.records - 1) / plain_s
            poll_rps = (args.records - 1) / poll_s
            hand_rps = (args.records - 1) / hand_s
            eng_rps = eng_records / eng_s
            results["throughput"] = {
                "bare_loop_records_per_s": round(plain_rps), "bare_loop_mb_per_s": round(plain_rps * mb, 1),
                "poll_loop_records_per_s": round(poll_rps), "poll_loop_mb_per_s": round(poll_rps * mb, 1),
                "handwritten_loop_records_per_s": round(hand_rps), "handwritten_loop_mb_per_s": round(hand_rps * mb, 1),
                "engine_records_per_s": round(eng_rps), "engine_mb_per_s": round(eng_rps * mb, 1),
                # the "plain confluent-kafka consumer loop" is the bare loop
                "ratio_vs_bare_loop": round(eng_rps / plain_rps, 2),
                "ratio_vs_poll_loop": round(eng_rps / poll_rps, 2),
                "ratio_vs_handwritten_loop": round(eng_rps / hand_rps, 2),
                "engine_invocations": invocations,
                "cpu_us_per_record": {"bare_loop": round(PLAIN_CPU[0], 1), "handwritten_loop": round(HANDWRITTEN_CPU[0], 1),
                                      "engine": round(CPU[0], 1), "workers": round(CPU[1], 1),
                                      "workers_with_start_up": round(CPU[2], 1)},
            }
            pairs = [(plain_rps, eng_rps, CPU[0], CPU[1])]
            for i in range(1, args.pairs):  # more (bare loop, engine) pairs on the same records: a median ratio
                plain_s, _ = plain_loop(env.bootstrap, topic, args.records)
                (tmpdir / f"pair{i}").mkdir()
                eng_s, eng_records, _ = engine_run(env.bootstrap, topic, args.records, code, tmpdir / f"pair{i}",
                                                   args.partitions)
                pairs.append(((args.records - 1) / plain_s, eng_records / eng_s, CPU[0], CPU[1]))
            if args.pairs > 1:
                results["throughput"]["pairs"] = [
                    {"bare_loop_mb_per_s": round(bare * mb, 1), "engine_mb_per_s": round(eng * mb, 1),
                     "ratio_vs_bare_loop": round(eng / bare, 3), "cpu_us_per_record": [round(e, 2), round(w, 2)]}
                    for bare, eng, e, w in pairs]
                results["throughput"]["ratio_vs_bare_loop_median"] = round(
                    statistics.median(eng / bare for bare, eng, _, _ in pairs), 3)
            admin.delete_topics([topic])
        if args.small:
            topic = make_topic(admin, args.partitions)
            produce(env.bootstrap, topic, args.small, args.size, args.partitions)
            (tmpdir / "small").mkdir()
            small_s, _, small_invocations = engine_run(env.bootstrap, topic, args.small, code, tmpdir / "small",
                                                       args.partitions, batch_size=1, window=0)
            per_second = small_invocations / small_s
            results["small_invocations"] = {
                "batch_size": 1, "window_s": 0, "partitions": args.partitions, "invocations_timed": small_invocations,
                "invocations_per_s": round(per_second),
                # wall time of one invocation on one partition (partitions run side by side)
                "us_per_invocation_per_partition": round(args.partitions / per_second * 1e6),
                "cpu_us_per_invocation": {"engine": round(CPU[0], 1), "workers": round(CPU[1], 1)},
            }
            admin.delete_topics([topic])
        if not args.skip_latency:
            topic = make_topic(admin, 1)
            lat = sorted(latency_run(env.bootstrap, topic, args.rate, args.seconds, code, tmpdir))
            q = statistics.quantiles(lat, n=100)
            results["latency_ms"] = {"rate": args.rate, "seconds": args.seconds, "samples": len(lat),
                                     "p50": round(q[49], 1), "p99": round(q[98], 1), "max": round(lat[-1], 1)}
            acks = statistics.quantiles(LATENCY_ACKS, n=100)
            results["latency_ms"]["producer_ack_p50_p99"] = [round(acks[49], 1), round(acks[98], 1)]
            admin.delete_topics([topic])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
