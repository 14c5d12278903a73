"""The engine process's cyclic garbage collector: the young generation is collected every 20,000 new
container objects instead of CPython's default 700.

A poll of 1,000 records allocates ~2,000 container objects (librdkafka's messages, the records) that stay
alive while they wait in a partition's buffer. At the default the collector ran every ~350 records, walked
them, promoted them to older generations and walked them again in a full collection: objects reference
counting frees anyway once their batch is done. That was 15-25 % of the engine's GIL time at 100k records/s
(BENCHMARKS.md, issue 23). Cycles are still collected, only later; nothing is turned off.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def tune() -> None:
    """Raise the young generation's threshold for this process (idempotent; never lowers a higher one, and leaves
    a collector that was disabled on purpose, threshold 0, alone)."""
    young, *older = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, *older)
