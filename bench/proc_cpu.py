"""CPU time of a benchmark's child processes (the handler workers), read from /proc while they run."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def children_cpu() -> float:
    """CPU seconds used so far by this process's live children (the handler workers), from /proc:
    os.times() counts children only once reaped, and then with their interpreter start-up included."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for path in Path("/proc/self/task").glob("*/children"):
        try:
            pids = path.read_text().split()
        except OSError:  # the thread ended between the glob and the read
            continue
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def threads_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's threads, summed by name: Python's threads by their ``threading``
    name without its number, librdkafka's by theirs (``rdk:broker``, ``rdk:main``)."""
    python_names = {t.native_id: t.name.rstrip("0123456789_-") for t in threading.enumerate()}
    by_name: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat.rpartition(")")[2].split()
        name = python_names.get(int(task.name)) or (name.split("/")[0].rstrip("0123456789") if name.startswith("rdk:") else name)
        by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return by_name
