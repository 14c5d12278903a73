"""CPU time of a benchmark's child processes (the handler workers), read from /proc while they run."""

from __future__ import annotations

import os
from pathlib import Path


def children_cpu() -> float:
    """CPU seconds used so far by this process's live children (the handler workers), from /proc:
    os.times() counts children only once reaped, and then with their interpreter start-up included."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for path in Path("/proc/self/task").glob("*/children"):
        for pid in path.read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total
