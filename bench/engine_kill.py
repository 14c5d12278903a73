"""Duplicates after a SIGKILL of the engine, and throughput, with a real ``triggerfish run`` process.

    .venv/bin/python bench/engine_kill.py                                # this checkout only
    .venv/bin/python bench/engine_kill.py --before /tmp/base/src         # also the code in /tmp/base/src

A Python handler appends every record's ``partition offset`` to a file (one write per invoke, at its
start: what a handler with side effects has done once it runs). Per side (``before`` runs with
PYTHONPATH=--before, so the engine and its workers run that code; ``after`` is this checkout):

- throughput: --records pre-produced records of --size bytes on --partitions partitions, BatchSize
  --batch-size, window 0, no kill; records/s from the first invoke to the last (the handler's clock);
- high rate: the same pre-produced backlog, the engine SIGKILLed when 20 %, 50 % and 80 % of the records
  were handled, started again each time at once (it joins once the dead member's session timed out);
- low rate: the records produced at --low-rate per second while the engine runs, killed when 20 %, 50 %
  and 80 % were produced, once it keeps up again (a restart waits ~10 s for the dead member's session).

Duplicates of one kill, per partition = the highest offset handled before the kill + 1 - the first
offset handled after the restart (the group's committed offset): how many records the handler sees
twice. They are reported next to --batch-size (the bound is two batches per partition). Every record
must be handled at least once (checked).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

HANDLER = """
import os, time

def handler(event, context):
    lines = [f"t {time.time()}"]
    for records in event["records"].values():
        lines.extend(f"{r['partition']} {r['offset']}" for r in records)
    fd = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, ("\\n".join(lines) + "\\n").encode())
    os.close(fd)
"""
KILL_AT = (0.2, 0.5, 0.8)


class Handled:
    """What the handler wrote so far, read incrementally: (partition, offset) in order, invoke times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[tuple[int, int]] = []
        self.times: list[float] = []
        self.unique: set[tuple[int, int]] = set()
        self._read = 0

    def refresh(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._read)
                data = f.read()
        except FileNotFoundError:
            return 0
        complete = data[: data.rfind(b"\n") + 1]
        self._read += len(complete)
        for line in complete.decode().splitlines():
            a, b = line.split()
            if a == "t":
                self.times.append(float(b))
            else:
                row = (int(a), int(b))
                self.rows.append(row)
                self.unique.add(row)
        return len(self.unique)

    def settle(self, quiet: float = 0.5) -> None:
        """Wait until the file stops growing (the killed engine's workers finished their invoke)."""
        size, since = -1, time.monotonic()
        while time.monotonic() - since < quiet:
            now = self.path.stat().st_size if self.path.exists() else 0
            if now != size:
                size, since = now, time.monotonic()
            time.sleep(0.05)
        self.refresh()


class Engine:
    """``triggerfish run`` of one project directory, with PYTHONPATH pointing at ``src`` when given."""

    def __init__(self, project: Path, src: str | None) -> None:
        self.project, self.src = project, src
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ}
        if self.src:
            env["PYTHONPATH"] = self.src
        log = open(self.project / "run.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "triggerfish", "run", "--config",
                                      str(self.project / "triggerfish.yaml"), "--no-api"],
                                     stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.project)
        log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


def make_topic(admin: AdminClient, partitions: int) -> str:
    name = f"bench-kill-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    return name


def produce(bootstrap: str, topic: str, records: int, size: int, partitions: int, rate: float = 0.0,
            produced: list[int] | None = None) -> None:
    """Round-robin over partitions; at ``rate`` records/s when given (counting into ``produced[0]``)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5 if rate else 20, "batch.size": 1_000_000,
                         "queue.buffering.max.kbytes": 1_048_576})
    value = b"x" * size
    started = time.perf_counter()
    for i in range(records):
        if rate:
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        while True:
            try:
                producer.produce(topic, value, partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.05)
        if produced is not None:
            produced[0] = i + 1
        producer.poll(0)
    producer.flush(120)


def project(root: Path, name: str, topic: str, bootstrap: str, batch_size: int) -> tuple[Path, Path]:
    directory = root / name
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "rec.py").write_text(textwrap.dedent(HANDLER))
    out = directory / "out.txt"
    doc = {"Functions": [{"FunctionName": "rec", "CodeUri": str(directory / "code"), "Handler": "rec.handler",
                          "Environment": {"Variables": {"OUT": str(out)}}}],
           "EventSourceMappings": [{"FunctionName": "rec", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
                                    "BatchSize": batch_size, "MaximumBatchingWindowInSeconds": 0,
                                    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}}}]}
    (directory / "triggerfish.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory, out


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def throughput(args: argparse.Namespace, admin: AdminClient, root: Path, side: str, src: str | None) -> float:
    topic = make_topic(admin, args.partitions)
    produce(args.bootstrap, topic, args.records, args.size, args.partitions)
    directory, out = project(root, f"tp-{side}-{topic}", topic, args.bootstrap, args.batch_size)
    engine, handled = Engine(directory, src), Handled(out)
    engine.start()
    try:
        wait_for(lambda: handled.refresh() >= args.records, 300, "every record")
    finally:
        engine.stop()
    admin.delete_topics([topic])
    # from the first invoke's start to the last one's: one batch per partition less than handled
    return float((args.records - args.batch_size * args.partitions) / (handled.times[-1] - handled.times[0]))


def kill_run(args: argparse.Namespace, admin: AdminClient, root: Path, side: str, src: str | None,
             rate: float) -> list[dict[int, int]]:
    """Duplicates per partition of each kill."""
    topic = make_topic(admin, args.partitions)
    produced = [0]
    producer = None
    if rate:
        producer = threading.Thread(target=produce, args=(args.bootstrap, topic, args.records, args.size,
                                                          args.partitions, rate, produced), daemon=True)
    else:
        produce(args.bootstrap, topic, args.records, args.size, args.partitions)
        produced[0] = args.records
    directory, out = project(root, f"kill-{side}-{topic}", topic, args.bootstrap, args.batch_size)
    engine, handled = Engine(directory, src), Handled(out)
    engine.start()
    if producer is not None:
        wait_for(lambda: "assigned" in (directory / "run.log").read_text(), 60, "the group's assignment")
        producer.start()
    marks: list[int] = []
    try:
        for point in KILL_AT:
            if rate:  # at that share of the producing, once keeping up again after the previous restart
                wait_for(lambda point=point: produced[0] >= point * args.records, 300, f"{point:.0%} produced")
                wait_for(lambda: produced[0] - handled.refresh() <= max(rate * 0.05, args.partitions), 30, "caught up")
            else:
                wait_for(lambda point=point: handled.refresh() >= point * args.records, 300, f"{point:.0%} handled")
            engine.kill()
            handled.settle()
            marks.append(len(handled.rows))
            engine.start()
        wait_for(lambda: handled.refresh() >= args.records, 300, "every record")
    finally:
        engine.stop()
        if producer is not None:
            producer.join(300)
    kills: list[dict[int, int]] = []
    for mark, end in zip(marks, [*marks[1:], len(handled.rows)], strict=True):
        last: dict[int, int] = {}
        for p, o in handled.rows[:mark]:
            last[p] = max(last.get(p, -1), o)
        first: dict[int, int] = {}
        for p, o in handled.rows[mark:end]:
            first.setdefault(p, o)  # the group's committed offset when the engine was killed
        # a partition with nothing handled after the restart had finished: nothing to see twice
        kills.append({p: last.get(p, -1) + 1 - first[p] if p in first else 0 for p in range(args.partitions)})
    expected = {(p, o) for p in range(args.partitions) for o in range(args.records // args.partitions)}
    missing = expected - handled.unique
    if missing:
        raise SystemExit(f"{side}: {len(missing)} records never handled")
    admin.delete_topics([topic])
    return kills


def add_side_arguments(parser: argparse.ArgumentParser) -> None:
    """--before and --also: the code each side runs (the engine and its workers inherit PYTHONPATH)."""
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--before", metavar="SRC", help="the old code's src directory (e.g. from `git archive main src`)")
    parser.add_argument("--also", metavar="NAME=SRC", action="append", default=[],
                        help="another side: a src directory run under NAME (e.g. an experiment)")


def sides_of(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(name, PYTHONPATH or None for this checkout) of every side, "before" first."""
    sides: list[tuple[str, str | None]] = [("before", args.before)] if args.before else []
    return [*sides, ("after", None), *((name, src) for name, _, src in (also.partition("=") for also in args.also))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_side_arguments(parser)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--low-rate", type=float, default=1000.0, help="records/s of the low-rate run")
    parser.add_argument("--pairs", type=int, default=1, help="throughput runs per side, before/after alternating")
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--runs", default="high,low", help="which kill runs: high, low or both (comma-separated)")
    args = parser.parse_args()
    sides = sides_of(args)
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    results: dict[str, Any] = {"records": args.records, "partitions": args.partitions, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in range(args.pairs):
            for side, src in sides:
                rps = throughput(args, admin, root, f"{side}{n}", src)
                results.setdefault(side, {}).setdefault("records_per_s", []).append(round(rps))
                print(f"{side}: {rps:,.0f} records/s", file=sys.stderr)
        for side, src in sides:
            if args.skip_kills:
                break
            runs = [(name, rate) for name, rate in (("high", 0.0), ("low", args.low_rate)) if name in args.runs.split(",")]
            for name, rate in runs:
                kills = kill_run(args, admin, root, side, src, rate)
                worst = max(max(k.values()) for k in kills)
                results.setdefault(side, {})[f"duplicates_{name}_rate"] = {
                    "rate": rate or "backlog", "per_kill_per_partition": [list(k.values()) for k in kills],
                    "max_per_partition": worst, "max_in_batches": round(worst / args.batch_size, 2)}
                print(f"{side} {name}: duplicates per kill per partition {[list(k.values()) for k in kills]}",
                      file=sys.stderr)
    for side, _ in sides:
        if rates := results.get(side, {}).get("records_per_s"):
            results[side]["records_per_s_median"] = round(statistics.median(rates))
    if args.before and args.pairs:
        results["after_over_before"] = round(results["after"]["records_per_s_median"]
                                             / results["before"]["records_per_s_median"], 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
