"""Produce only, side by side: the real Strimzi bridge, this checkout's bridge, and variants of it.

The produce cells of the Strimzi peer's ``bench.py`` (``loadgen.go``: closed loop, keep-alive clients,
bodies of 1 or 100 ~200-byte JSON records, ``kafka.producer.acks=1``), with its own code (imported from
``STRIMZI_PEER``), for quick before/after pairs. Every bridge runs at once on the same broker; each cell
is measured on each bridge in turn, the order reversed every round (ABBA). Besides records/s, each run
reports CPU per 1k records of the bridge, of the broker (the process listening on the bootstrap port,
when this user can read it), of the load generator, and of the whole machine (``/proc/stat``): on a
2-core box the three share the CPU, so what the bridge makes the broker do counts too.

``--baseline DIR`` adds a bridge run from another ``src`` tree (``git archive main src | tar x -C DIR``);
``--variant NAME:k=v,k=v`` adds this checkout's bridge with extra bridge properties (repeatable);
``--py-spy FILE`` records this checkout's bridge during its first run of the first cell.

    STRIMZI_PEER=/work/shared/peers/strimzi PATH=$PWD/.venv/bin:$PATH KAFKA_BOOTSTRAP=127.0.0.1:9092 \\
      .venv/bin/python bench/bridge_produce.py [--cells 100x16,100x64] [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bridge_consume import _peer_bench as peer_bench  # the Strimzi peer's bench.py, loaded once the same way


def _listener_pid(port: int) -> int | None:
    """The pid of the process listening on ``port`` on this machine, if ``ss`` shows it."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    for part in out.split("pid=")[1:]:
        digits = part.split(",", 1)[0]
        if digits.isdigit():
            return int(digits)
    return None


def _machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _threads_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid``, summed by thread name (Python's threads share the process's name)."""
    out: dict[str, float] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = "main" if stat.parent.name == str(pid) else text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _strimzi(bench: Any, port: int) -> Any:
    """The real Strimzi bridge, from the distribution run-its.sh builds."""
    dists = sorted(glob.glob(os.path.expanduser("~/.cache/strimzi-its/src/target/kafka-bridge-*/kafka-bridge-*/")))
    if not dists:
        sys.exit("no Strimzi distribution: run run-its.sh strimzi once")
    java = os.environ.get("STRIMZI_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")
    run = [f"{dists[0]}/bin/kafka_bridge_run.sh", "--config-file={config}"]
    return bench.Bridge("strimzi", port, port + 1, run, env={"PATH": f"{java}/bin:{os.environ['PATH']}"})


def _cell(text: str) -> tuple[int, int]:
    batch, _, clients = text.partition("x")
    return int(batch), int(clients)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="100x16,100x64", help="batch x clients, comma-separated (default 100x16,100x64)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup-seconds", type=float, default=10.0, help="per bridge, once, before measuring")
    ap.add_argument("--port-base", type=int, default=18700)
    ap.add_argument("--no-strimzi", action="store_true", help="measure the triggerfish bridges only")
    ap.add_argument("--baseline", type=Path, help="a directory holding another src tree's triggerfish package")
    ap.add_argument("--variant", action="append", default=[], help="NAME:key=value,key=value (bridge properties)")
    ap.add_argument("--threads", action="store_true", help="print the triggerfish bridges' CPU per 1k records by thread")
    ap.add_argument("--py-spy", type=Path, help="write py-spy samples (collapsed stacks) of this checkout's bridge here")
    args = ap.parse_args()
    bench = peer_bench()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or sys.exit("KAFKA_BOOTSTRAP is not set")
    tf = shutil.which("triggerfish") or sys.exit("triggerfish is not on PATH")
    cache = Path(os.path.expanduser(os.environ.get("STRIMZI_IT_CACHE", "~/.cache/strimzi-its")))
    bench.LOADGEN = bench.build_loadgen(cache)  # type: ignore[attr-defined]
    broker = _listener_pid(int(bootstrap.rsplit(":", 1)[1]))
    cells = [_cell(c) for c in args.cells.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bridge-produce-"))
    pb = args.port_base
    tf_cmd = [tf, "bridge", "--config", "{config}"]
    bridges: list[Any] = []
    if not args.no_strimzi:
        bridges.append(_strimzi(bench, pb))
    bridges.append(bench.Bridge("triggerfish", pb + 10, pb + 11, tf_cmd))
    if args.baseline:
        bridges.append(bench.Bridge("baseline", pb + 20, pb + 21, tf_cmd, env={"PYTHONPATH": str(args.baseline)}))
    for i, spec in enumerate(args.variant):
        name, _, props = spec.partition(":")
        extra = dict(kv.split("=", 1) for kv in props.split(",") if kv)
        bridges.append(bench.Bridge(name, pb + 30 + 10 * i, pb + 31 + 10 * i, tf_cmd, extra))
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    tag = uuid.uuid4().hex[:6]
    topics = {b.name: f"bench-produce-{b.name}-{tag}" for b in bridges}
    for fut in admin.create_topics([NewTopic(t, 3, 1) for t in topics.values()]).values():
        fut.result(30)
    bodies = {batch: bench.body_file(work, batch) for batch in {c[0] for c in cells}}
    runs: dict[tuple[int, int], dict[str, list[dict[str, float]]]] = {c: {b.name: [] for b in bridges} for c in cells}
    try:
        print(f"load={os.getloadavg()[0]:.2f} broker pid={broker}", flush=True)
        for b in bridges:
            b.start(work, bootstrap)
        for b in bridges:
            b.wait_ready()
        for b in bridges:  # the JVM's JIT compiler needs load before it is at speed
            bench.run_load(b.url, topics[b.name], 16, args.warmup_seconds, bodies[cells[0][0]], warmup=1)
        spied = False
        for cell in cells:
            batch, clients = cell
            order = list(bridges)
            for _ in range(args.rounds):
                for b in order:
                    spy = None
                    if args.py_spy and not spied and b.name == "triggerfish":
                        spied = True
                        spy = subprocess.Popen(["py-spy", "record", "--gil", "-f", "raw", "-r", "250", "-o", str(args.py_spy), "-p",
                                                str(b.proc.pid), "-d", str(int(args.seconds + 1))],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    threads0 = _threads_cpu_s(b.proc.pid) if args.threads and b.name != "strimzi" else {}
                    cpu0 = (bench.cpu_s(b.proc.pid), bench.cpu_s(broker) if broker else 0.0, _children_cpu_s(), _machine_cpu_s())
                    r = bench.run_load(b.url, topics[b.name], clients, args.seconds, bodies[batch])
                    cpu1 = (bench.cpu_s(b.proc.pid), bench.cpu_s(broker) if broker else 0.0, _children_cpu_s(), _machine_cpu_s())
                    if spy is not None:
                        spy.wait(60)
                    records = r["requests"] * (args.seconds + 2.0) / args.seconds * batch  # with loadgen's warm-up
                    per_1k = [1e6 * (after - before) / max(1.0, records) for before, after in zip(cpu0, cpu1, strict=True)]
                    run = {"rec_s": r["req_s"] * batch, "p50_ms": r["p50_ms"], "errors": r["errors"], "bridge": per_1k[0],
                           "broker": per_1k[1], "loadgen": per_1k[2], "machine": per_1k[3]}
                    runs[cell][b.name].append(run)
                    if threads0:
                        threads1 = _threads_cpu_s(b.proc.pid)
                        print("      threads ms/1k: " + "  ".join(
                            f"{n} {1e6 * (threads1[n] - threads0.get(n, 0.0)) / max(1.0, records):.1f}"
                            for n in sorted(threads1, key=lambda n: threads0.get(n, 0.0) - threads1[n])
                            if threads1[n] - threads0.get(n, 0.0) > 0.01), flush=True)
                    print(f"  b{batch:<3} c{clients:<3} {b.name:12} {run['rec_s']:8.0f} rec/s  p50 {r['p50_ms']:7.2f} ms  "
                          f"CPU ms/1k: bridge {per_1k[0]:5.1f} broker {per_1k[1]:5.1f} loadgen {per_1k[2]:5.1f} "
                          f"machine {per_1k[3]:5.1f}  errors {r['errors']}", flush=True)
                order.reverse()
    finally:
        for b in bridges:
            b.stop()
        for fut in admin.delete_topics(list(topics.values())).values():
            try:
                fut.result(30)
            except Exception:  # the topics are only a benchmark's
                pass
        shutil.rmtree(work, ignore_errors=True)
    ref = bridges[0].name
    for cell in cells:
        base = statistics.median(r["rec_s"] for r in runs[cell][ref])
        for name, rs in runs[cell].items():
            med = {k: statistics.median(r[k] for r in rs) for k in ("rec_s", "bridge", "broker", "loadgen", "machine")}
            print(f"b{cell[0]:<3} c{cell[1]:<3} {name:12} median {med['rec_s']:8.0f} rec/s ({med['rec_s'] / base:.2f}x {ref})  "
                  f"CPU ms/1k: bridge {med['bridge']:.1f} broker {med['broker']:.1f} loadgen {med['loadgen']:.1f} "
                  f"machine {med['machine']:.1f}  runs {[round(r['rec_s']) for r in rs]}")


if __name__ == "__main__":
    main()
