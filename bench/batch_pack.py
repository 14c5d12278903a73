"""The engine's side of a batch's trip to a worker alone: ``pack_parts`` of one partition's block of polled
records (the pickled columns and the payloads' pieces), in CPU ns per record.

    .venv/bin/python bench/batch_pack.py                           # 1000 x 1 KB, no keys, as engine_throughput.py
    PYTHONPATH=/tmp/old/src .venv/bin/python bench/batch_pack.py   # the same against older code

Each round times one ``pack_parts`` with ``time.thread_time_ns``; the min and median over the rounds are
printed. Compare two versions by alternating runs of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from triggerfish.esm.block import Block
from triggerfish.esm.event import EventBuilder, column_sizes
from triggerfish.functions.batch import pack_parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    n = args.records
    envelope = EventBuilder("SelfManagedKafka", ["127.0.0.1:9092"]).envelope
    values: list[bytes | None] = [os.urandom(args.size) for _ in range(n)]
    keys: list[bytes | None] = [None] * n
    offsets = list(range(10_000_000, 10_000_000 + n))
    stamps = [1_700_000_000_000 + 3 * i for i in range(n)]
    key_lens, value_lens = [-1] * n, [len(v or b"") for v in values]
    sizes = column_sizes("bench-topic", 0, offsets, stamps, "CREATE_TIME", key_lens, value_lens)
    block = Block("bench-topic", 0, offsets, stamps, "CREATE_TIME", keys, values, key_lens, value_lens, sizes)
    times = []
    for _ in range(args.rounds):
        started = time.thread_time_ns()
        pack_parts(envelope, block)
        times.append(time.thread_time_ns() - started)
    times = times[args.rounds // 10:]  # warmed up
    print(json.dumps({"records": n, "size": args.size, "rounds": args.rounds,
                      "ns_per_record": {"min": min(times) // n, "median": int(statistics.median(times)) // n}}))


if __name__ == "__main__":
    main()
