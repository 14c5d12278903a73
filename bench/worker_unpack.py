"""The handler worker's per-record work alone: ``unpack_event`` of a packed batch read in place from a
memfd (as the worker reads the engine's shared region), then freeing the event, in CPU ns per record.

    .venv/bin/python bench/worker_unpack.py                                 # 1000 x 1 KB, keys str(i % 64)
    .venv/bin/python bench/worker_unpack.py --unique-keys --rounds 500
    PYTHONPATH=/tmp/old/src .venv/bin/python bench/worker_unpack.py         # the same against older code

The batch is the one ``engine_throughput.py`` produces (1 KB values of one partition, 64 distinct keys).
Like the worker, the process sets its heap thresholds (``region.RegionReader`` does) and has a second
thread (``capture.FdCapture``'s), which makes glibc's malloc take its locks. Each round times one
unpack and one free with ``time.thread_time_ns``; the min and median over the rounds are printed.
Compare two versions by alternating runs of each: the machine's load moves the medians between runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import mmap
import os
import select
import statistics
import threading
import time

from triggerfish.esm.event import EventBuilder, Record
from triggerfish.functions.batch import pack_records, unpack_event
from triggerfish.functions.region import RegionReader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--unique-keys", action="store_true", help="a distinct 12-byte key per record")
    args = parser.parse_args()
    builder = EventBuilder("SelfManagedKafka", ["127.0.0.1:9092"])
    records = [Record("bench-topic", 0, 10_000_000 + i, 1_700_000_000_000 + i, "CREATE_TIME",
                      (f"user-{i:07d}" if args.unique_keys else str(i % 64)).encode(), b"x" * args.size)
               for i in range(args.records)]
    blob = pack_records(builder.envelope, records)
    assert json.dumps(unpack_event(blob), separators=(",", ":")).encode() == builder.build(records)
    fd = os.memfd_create("worker-unpack")
    os.write(fd, blob)
    RegionReader(os.dup(fd))  # the worker's heap thresholds (mallopt), set when its region reader is made
    idle_r, _idle_w = os.pipe()
    threading.Thread(target=select.select, args=([idle_r], [], []), daemon=True).start()
    view = memoryview(mmap.mmap(fd, len(blob), mmap.MAP_SHARED, mmap.PROT_READ))
    unpack_ns, free_ns = [], []
    for _ in range(args.rounds):
        started = time.thread_time_ns()
        event = unpack_event(view)
        unpacked = time.thread_time_ns()
        del event  # as the worker does once the handler returned: the batch's objects freed
        freed = time.thread_time_ns()
        unpack_ns.append((unpacked - started) / args.records)
        free_ns.append((freed - unpacked) / args.records)
    total = [u + f for u, f in zip(unpack_ns, free_ns, strict=True)]
    print(json.dumps({
        "records": args.records, "size": args.size, "unique_keys": args.unique_keys, "rounds": args.rounds,
        "gc_collections": sum(s["collections"] for s in gc.get_stats()),
        "ns_per_record": {name: {"min": round(min(xs)), "median": round(statistics.median(xs))}
                          for name, xs in (("unpack", unpack_ns), ("free", free_ns), ("total", total))},
    }))


if __name__ == "__main__":
    main()
