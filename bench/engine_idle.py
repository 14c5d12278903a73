"""Idle cost of ``triggerfish run`` with many mappings, and its time to the first invocation.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/engine_idle.py [--mappings 50] [--functions 1]
        [--seconds 30] [--settle 15] [--runs 3] [--wakes 3] [--pythonpath DIR]

Each run starts a real ``triggerfish run`` (control API on a free port, as users run it) with ``--mappings``
mappings, one topic each (1 partition, one record already in it: a warm broker), over ``--functions``
Python functions (the mappings are spread over them). It reports

first invocation   from the process's start (``Popen``) to the first handler call (the handler's clock),
                   and to every mapping having invoked once
Enabled            until the control API lists every mapping Enabled
idle               after everything was invoked and Enabled and a settling pause, ``--seconds`` of samples
                   from /proc: RSS of the engine process and of its worker processes, the engine's thread
                   count, CPU % of one core (utime+stime deltas) of the engine and of the workers; with
                   ``--by-thread`` also per kind of thread (CPU % and wake-ups/s from /proc/<pid>/task/*/schedstat, status);
                   ``dormant``: how many mappings' consumer groups have no member (esm/dormancy.py: quiet mappings
                   close their consumers; ``--settle`` longer than its DORMANT_AFTER_S, 30 s, to see them dormant)
wake               after the idle sample, ``--wakes`` times: one record produced to one mapping's topic, and the time
                   from the produce call to that mapping's handler call (a dormant mapping's first record waits for
                   the watcher's next check and a group join)

``--pythonpath DIR`` runs the engine (and, inheriting it, its workers) from another source tree, e.g. the
``src`` of ``git archive main src`` for a before/after in the same run. Idle figures come from the first
run only (``--idle-runs`` to sample more); the others measure start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

#: Appends "<mapping topic> <time>" to $OUT on each call (the time is the handler's clock).
HANDLER = """
import os, time

def handler(event, context):
    t = time.time()
    topics = {k.rsplit("-", 1)[0] for k in event.get("records", {})}
    with open(os.environ["OUT"], "a") as f:
        for topic in topics:
            f.write(f"{topic} {t}\\n")
    return {"ok": True}
"""

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _cpu_s(pid: int) -> float:
    try:
        f = _stat(pid)
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / _TICK  # utime, stime


def _rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE / 2**20
    except OSError:
        return 0.0


def _threads(pid: int) -> int:
    try:
        return int(_stat(pid)[17])
    except OSError:
        return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return out


def _thread_names(pid: int) -> dict[str, int]:
    names: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        name = name.split("/")[0].rstrip("0123456789-_") or name
        names[name] = names.get(name, 0) + 1
    return dict(sorted(names.items(), key=lambda kv: -kv[1]))


def _tasks(pid: int) -> dict[int, tuple[str, float, int]]:
    """Each thread of ``pid``: (name, CPU seconds, voluntary context switches, i.e. wake-ups after a wait)."""
    out: dict[int, tuple[str, float, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
            name = (task / "comm").read_text().strip()
            # schedstat's run time is exact; per-thread utime/stime are clock ticks, too coarse for idle threads
            ran = int((task / "schedstat").read_text().split()[0]) / 1e9
        except OSError:
            continue
        woke = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("voluntary_ctxt")), 0)
        out[int(task.name)] = (name, ran, woke)
    return out


def _python_names(pid: int) -> dict[int, str]:
    """Python thread names by native thread id, from ``py-spy dump`` (empty if py-spy is not installed)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        raw = subprocess.run([spy, "dump", "--json", "--nonblocking", "-p", str(pid)], capture_output=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {int(t["os_thread_id"]): str(t.get("thread_name") or "python")
            for t in json.loads(raw) if t.get("os_thread_id")}


def _kind(name: str) -> str:
    """A thread's kind: its name without the mapping's UUID or a number."""
    name = re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){0,3}(-[0-9a-f]{1,12})?", "<uuid>", name)
    return name.rstrip("0123456789-_") or name


def _by_thread(pid: int, before: dict[int, tuple[str, float, int]], elapsed: float) -> dict[str, Any]:
    """CPU % of one core and wake-ups per second per kind of thread over the sample, busiest first."""
    after, names = _tasks(pid), _python_names(pid)
    kinds: dict[str, list[float]] = {}
    for tid, (name, cpu, woke) in after.items():
        _, cpu0, woke0 = before.get(tid, (name, 0.0, 0))
        row = kinds.setdefault(_kind(names.get(tid, name)), [0, 0.0, 0.0])
        row[0] += 1
        row[1] += 100 * (cpu - cpu0) / elapsed
        row[2] += (woke - woke0) / elapsed
    ranked = sorted(kinds.items(), key=lambda kv: -kv[1][1])
    return {k: {"threads": int(n), "cpu_pct": round(c, 2), "wakeups_per_s": round(w, 1)} for k, (n, c, w) in ranked}


def _mappings(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/2015-03-31/event-source-mappings?MaxItems=10000", timeout=5) as r:
        return list(json.load(r)["EventSourceMappings"])


def _first_calls(out: Path) -> dict[str, float]:
    first: dict[str, float] = {}
    try:
        lines = out.read_text().splitlines()
    except FileNotFoundError:
        return first
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] not in first:
            first[parts[0]] = float(parts[1])
    return first


def _calls(out: Path, topic: str) -> list[float]:
    try:
        lines = out.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [float(t) for name, _, t in (line.partition(" ") for line in lines) if name == topic and t]


def _dormant(bootstrap: str, groups: list[str]) -> int:
    """How many of ``groups`` have no member (their mappings dormant)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.describe_consumer_groups(groups, request_timeout=15)
    return sum(not f.result(20).members for f in futures.values())


def _wakes(bootstrap: str, topics: list[str], out: Path, count: int) -> list[float]:
    """Seconds from producing one record to an idle mapping's topic to its handler call, for ``count`` mappings."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    waits = []
    for topic in topics[-count:] if count else []:
        seen = len(_calls(out, topic))
        sent = time.time()
        producer.produce(topic, b"w" * 100)
        producer.flush(30)
        deadline = time.monotonic() + 60
        while len(calls := _calls(out, topic)) <= seen and time.monotonic() < deadline:
            time.sleep(0.005)
        waits.append(round(calls[-1] - sent, 3) if len(calls) > seen else float("nan"))
    return waits


def _topics(bootstrap: str, count: int) -> list[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [f"bench-idle-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    for fut in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        fut.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for n in names:
        producer.produce(n, b"x" * 100)
    assert producer.flush(30) == 0
    return names


def _config(work: Path, bootstrap: str, topics: list[str], functions: int) -> Path:
    code = work / "code"
    code.mkdir(exist_ok=True)
    (code / "idle.py").write_text(HANDLER)
    out = work / "calls.txt"
    fns = [{"FunctionName": f"f{i}", "CodeUri": str(code), "Handler": "idle.handler",
            "Environment": {"Variables": {"OUT": str(out)}}} for i in range(functions)]
    maps = [{"FunctionName": f"f{i % functions}", "Topics": [t], "StartingPosition": "TRIM_HORIZON",
             "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
             "MaximumBatchingWindowInSeconds": 0} for i, t in enumerate(topics)]
    path = work / "triggerfish.yaml"
    path.write_text(yaml.safe_dump({"Functions": fns, "EventSourceMappings": maps}, sort_keys=False))
    return path


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise SystemExit(f"triggerfish run exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def one_run(args: argparse.Namespace, idle: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        work = Path(tmp)
        topics = _topics(args.bootstrap, args.mappings)
        config = _config(work, args.bootstrap, topics, args.functions)
        out, log = work / "calls.txt", work / "run.log"
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "COLUMNS": "250"}
        if args.pythonpath:
            env["PYTHONPATH"] = args.pythonpath
        cmd = [sys.executable, "-m", "triggerfish", "run", "--config", str(config), "--port", str(port),
               "--state", str(work / "state.db"), "--log-level", "warning"]
        with open(log, "wb") as sink:
            started = time.time()
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=work)
        try:
            _wait(lambda: _first_calls(out), 60, "the first invocation", proc, log)
            first = min(_first_calls(out).values()) - started
            # CPU the start-up took until then (engine and workers): what a busy machine stretches into wall time
            startup_cpu = _cpu_s(proc.pid) + sum(_cpu_s(w) for w in _children(proc.pid))
            _wait(lambda: len(_first_calls(out)) >= len(topics), 120, "every mapping's first invocation", proc, log)
            every = max(_first_calls(out).values()) - started

            def all_enabled() -> bool:
                try:
                    enabled: int = sum(m["State"] == "Enabled" for m in _mappings(url))
                except OSError:
                    return False
                return enabled >= len(topics)

            _wait(all_enabled, 120, "every mapping Enabled", proc, log)
            enabled = time.time() - started
            row: dict[str, Any] = {"first_invocation_s": round(first, 3), "startup_cpu_s": round(startup_cpu, 2),
                                   "every_invoked_s": round(every, 3), "all_enabled_s": round(enabled, 3)}
            if idle:
                row.update(_sample(proc.pid, args.settle, args.seconds, args.by_thread))
                row["dormant"] = _dormant(args.bootstrap, [m["UUID"] for m in _mappings(url)])
                row["wake_s"] = _wakes(args.bootstrap, topics, out, args.wakes)
            else:
                time.sleep(1.5)  # first_poll and first_invoke reach the state file with the next status refresh
            row["stages_ms"] = _stage_ms(work / "state.db")
            return row
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _stage_ms(state: Path) -> dict[str, float]:
    """Each setup stage's median duration over the mappings, from their saved status (ms since the runner
    started for first_poll and first_invoke)."""
    durations: dict[str, list[float]] = {}
    with sqlite3.connect(state) as db:
        for (raw,) in db.execute("SELECT status FROM status"):
            for stage in json.loads(raw).get("Stages", []):
                durations.setdefault(stage["stage"], []).append(float(stage.get("duration_ms") or 0.0))
    return {name: round(statistics.median(values), 1) for name, values in durations.items()}


def _sample(pid: int, settle: float, seconds: float, by_thread: bool) -> dict[str, Any]:
    time.sleep(settle)
    workers = _children(pid)
    tasks0 = _tasks(pid) if by_thread else {}
    e0, w0, t0 = _cpu_s(pid), sum(_cpu_s(w) for w in workers), time.monotonic()
    rss, wrss, threads = [], [], []
    while time.monotonic() - t0 < seconds:
        rss.append(_rss_mb(pid))
        wrss.append(sum(_rss_mb(w) for w in workers))
        threads.append(_threads(pid))
        time.sleep(1.0)
    elapsed = time.monotonic() - t0
    e1, w1 = _cpu_s(pid), sum(_cpu_s(w) for w in workers)
    threads_of = {"by_thread": _by_thread(pid, tasks0, elapsed)} if by_thread else {}
    return {
        "engine_rss_mb": round(max(rss), 1), "workers": len(workers), "workers_rss_mb": round(max(wrss), 1),
        "tree_rss_mb": round(max(rss) + max(wrss), 1), "threads": max(threads),
        "engine_cpu_pct": round(100 * (e1 - e0) / elapsed, 2), "workers_cpu_pct": round(100 * (w1 - w0) / elapsed, 2),
        "sampled_s": round(elapsed, 1), "thread_names": _thread_names(pid), **threads_of,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mappings", type=int, default=50)
    parser.add_argument("--functions", type=int, default=1, help="the mappings are spread over this many functions")
    parser.add_argument("--seconds", type=float, default=30.0, help="idle sampling time")
    parser.add_argument("--settle", type=float, default=15.0, help="pause before sampling, once all are Enabled")
    parser.add_argument("--runs", type=int, default=3, help="start-ups measured")
    parser.add_argument("--wakes", type=int, default=3, help="records produced to idle mappings after the sample")
    parser.add_argument("--idle-runs", type=int, default=1, help="of which the first N also sample idle")
    parser.add_argument("--pythonpath", default="", help="run triggerfish from this source tree (PYTHONPATH)")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--label", default="")
    parser.add_argument("--by-thread", action="store_true",
                        help="also CPU and wake-ups per kind of thread while idle (names of Python threads by py-spy)")
    args = parser.parse_args()
    rows = []
    for i in range(args.runs):
        row = one_run(args, idle=i < args.idle_runs)
        row["label"] = args.label
        print(json.dumps(row), flush=True)
        rows.append(row)
    firsts = [r["first_invocation_s"] for r in rows]
    print(json.dumps({"label": args.label, "mappings": args.mappings, "functions": args.functions,
                      "first_invocation_median_s": statistics.median(firsts), "first_invocation_max_s": max(firsts),
                      "startup_cpu_median_s": statistics.median(r["startup_cpu_s"] for r in rows),
                      "every_invoked_median_s": statistics.median(r["every_invoked_s"] for r in rows),
                      "all_enabled_median_s": statistics.median(r["all_enabled_s"] for r in rows)}))


if __name__ == "__main__":
    main()
