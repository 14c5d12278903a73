"""The engine's invoke path alone, without Kafka: a packed batch to a warm worker and back.

    .venv/bin/python bench/engine_invoke_path.py                          # 300 batches of 1000 x 1 KB
    .venv/bin/python bench/engine_invoke_path.py --batches 3000 --records 1   # small invocations

``esm.invoker.Invoker`` with the no-op Python handler, one worker, batches back to back in one
thread: what the engine does per batch after polling (``pack_records``, the pipe, the worker's
``unpack_event``, the reply). Prints records/s and CPU per record of the engine process and of the
worker (from ``/proc``). With no broker in the loop its numbers move far less with the machine's load
than the full benchmark's, so it compares two versions well: run it against the old source with
``PYTHONPATH=<old checkout>/src`` (the worker inherits the environment) right before or after this one.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from proc_cpu import children_cpu  # bench/ is on sys.path
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.esm.invoker import Invoker
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--records", type=int, default=1000, help="records per batch")
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "handlers.py").write_text("def noop(event, context):\n    return None\n")
        runtime = FunctionRuntime([FunctionConfig.from_dict({"FunctionName": "noop", "CodeUri": tmp,
                                                             "Handler": "handlers.noop"})])
        try:
            runtime.warm("noop", 1)
            invoker = Invoker(runtime, "noop", EventBuilder("SelfManagedKafka", ["127.0.0.1:9092"]), parse_response=False)
            records = [Record("bench-topic", 0, 10_000_000 + i, 1_700_000_000_000 + i, "CREATE_TIME",
                              str(i % 64).encode(), b"x" * args.size) for i in range(args.records)]
            invoker.invoke(records)  # the worker's first invocation (imports) is not timed
            before, worker_before, started = os.times(), children_cpu(), time.perf_counter()
            for _ in range(args.batches):
                invoker.invoke(records)
            elapsed = time.perf_counter() - started
            after, worker_after = os.times(), children_cpu()
        finally:
            runtime.close()
    n = args.batches * args.records
    engine = after.user + after.system - before.user - before.system
    print(json.dumps({
        "batches": args.batches, "records_per_batch": args.records, "size": args.size,
        "records_per_s": round(n / elapsed), "invocations_per_s": round(args.batches / elapsed),
        "us_per_invocation": round(elapsed / args.batches * 1e6, 1),
        "cpu_us_per_record": {"engine": round(engine / n * 1e6, 2), "worker": round((worker_after - worker_before) / n * 1e6, 2)},
    }))


if __name__ == "__main__":
    main()
