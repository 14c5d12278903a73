"""Consume only, side by side: the real Strimzi bridge, this checkout's bridge, and optionally another tree's.

The consume cell of the Strimzi peer's ``bench.py`` (one ``json`` consumer polls a pre-filled topic with
``GET .../records?timeout=1000`` until it has every record), with its own code (imported from
``STRIMZI_PEER``), for quick before/after pairs: ``--baseline DIR`` adds a bridge run from another
``src`` tree (``git archive main src | tar x -C DIR``), so old and new are measured in the same run,
in turn with Strimzi (ABBA). ``--py-spy FILE`` records this checkout's bridge during its first round.

    STRIMZI_PEER=/work/shared/peers/strimzi PATH=$PWD/.venv/bin:$PATH KAFKA_BOOTSTRAP=127.0.0.1:9092 \\
      .venv/bin/python bench/bridge_consume.py [--records 200000] [--rounds 4] [--baseline /tmp/main]
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any


def _peer_bench() -> ModuleType:
    peer = Path(os.environ.get("STRIMZI_PEER", "/work/shared/peers/strimzi"))
    spec = importlib.util.spec_from_file_location("strimzi_bench", peer / "bench.py")
    if spec is None or spec.loader is None:
        sys.exit(f"no bench.py in {peer} (set STRIMZI_PEER)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--port-base", type=int, default=18600)
    ap.add_argument("--port-step", type=int, default=100, help="ports between one bridge's and the next's")
    ap.add_argument("--no-strimzi", action="store_true", help="measure the triggerfish bridges only")
    ap.add_argument("--baseline", type=Path, help="a directory holding another src tree's triggerfish package")
    ap.add_argument("--py-spy", type=Path, help="write py-spy samples (collapsed stacks) of this checkout's bridge here")
    args = ap.parse_args()
    bench = _peer_bench()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or sys.exit("KAFKA_BOOTSTRAP is not set")
    tf = shutil.which("triggerfish") or sys.exit("triggerfish is not on PATH")
    work = Path(tempfile.mkdtemp(prefix="bridge-consume-"))
    pb = args.port_base
    bridges: list[Any] = []
    if not args.no_strimzi:
        java_home = os.environ.get("STRIMZI_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")
        dist = next(iter(sorted(glob.glob(os.path.expanduser("~/.cache/strimzi-its/src/target/kafka-bridge-*/kafka-bridge-*/")))), "")
        if not dist:
            sys.exit("no Strimzi distribution: run run-its.sh strimzi once")
        bridges.append(bench.Bridge("strimzi", pb, pb + 1, [f"{dist}/bin/kafka_bridge_run.sh", "--config-file={config}"],
                                    env={"PATH": f"{java_home}/bin:{os.environ['PATH']}"}))
    bridges.append(bench.Bridge("triggerfish", pb + args.port_step, pb + args.port_step + 1, [tf, "bridge", "--config", "{config}"]))
    if args.baseline:
        step = 2 * args.port_step
        bridges.append(bench.Bridge("baseline", pb + step, pb + step + 1, [tf, "bridge", "--config", "{config}"],
                                    env={"PYTHONPATH": str(args.baseline)}))
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"bench-consume-{uuid.uuid4().hex[:6]}"
    for fut in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        fut.result(30)
    runs: dict[str, list[dict[str, Any]]] = {b.name: [] for b in bridges}
    try:
        print(f"load={os.getloadavg()[0]:.2f}", flush=True)
        bench.fill_topic(bootstrap, topic, args.records)
        for b in bridges:
            b.start(work, bootstrap)
        for b in bridges:
            b.wait_ready()
        time.sleep(3)
        order = list(bridges)
        for i in range(args.rounds):
            for b in order:
                spy = None
                if args.py_spy and i == 0 and b.name == "triggerfish":
                    spy = subprocess.Popen(["py-spy", "record", "--gil", "-f", "raw", "-r", "200", "-o", str(args.py_spy),
                                            "-p", str(b.proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1)
                before = bench.cpu_s(b.proc.pid)
                r = bench.consume(b, topic, args.records, limit_s=300)
                r["cpu_ms_per_1k"] = 1e6 * (bench.cpu_s(b.proc.pid) - before) / max(1, r["records"])
                if spy is not None:
                    spy.send_signal(2)
                    spy.wait(60)
                runs[b.name].append(r)
                print(f"  {b.name:12} {r['rec_s']:9.0f} rec/s  polls {r['polls']}  CPU {r['cpu_ms_per_1k']:.1f} ms/1k", flush=True)
            order.reverse()
    finally:
        for b in bridges:
            b.stop()
        for fut in admin.delete_topics([topic]).values():
            try:
                fut.result(30)
            except Exception:  # the topic is only a benchmark's
                pass
        shutil.rmtree(work, ignore_errors=True)
    ref = statistics.median(r["rec_s"] for r in runs[bridges[0].name])
    for name, rs in runs.items():
        rate = statistics.median(r["rec_s"] for r in rs)
        cpu = statistics.median(r["cpu_ms_per_1k"] for r in rs)
        print(f"{name:12} median {rate:9.0f} rec/s ({rate / ref:.2f}x {bridges[0].name})  CPU {cpu:.1f} ms/1k  "
              f"runs {[round(r['rec_s']) for r in rs]}")


if __name__ == "__main__":
    main()
