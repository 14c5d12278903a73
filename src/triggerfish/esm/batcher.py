"""When a batch closes: BatchSize records, the batching window, or the 6 MB payload limit (policy only).

One ``PartitionBuffer`` per assigned partition holds polled records until the partition's next
batch is cut. A batch is ready when it has ``batch_size`` records, when its window (started by its
first record) has elapsed, or when one more record would push the event JSON past
``max_bytes`` (6,291,456). ``take`` cuts the largest prefix that fits both limits; a record that
cannot fit even alone comes back flagged ``oversized`` so the caller reports it instead of
dropping it silently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter

from triggerfish.esm.config import MAX_PAYLOAD_BYTES
from triggerfish.esm.event import Record

_SIZE = attrgetter("size")


def known_size(records: list[Record]) -> int | None:
    """The JSON sizes of ``records`` summed when every one carries its ``size`` (from_message sets it), else None:
    a record built another way, or a filtered placeholder, which has none."""
    sizes = list(map(_SIZE, records))
    return sum(sizes) if all(sizes) else None


def _total_size(records: Iterable[Record]) -> int:
    """The JSON sizes of ``records`` summed (``json_size()`` computes those not known)."""
    records = records if isinstance(records, list) else list(records)
    size = known_size(records)
    return sum([r.json_size() for r in records]) if size is None else size


@dataclass
class Cut:
    records: list[Record]
    #: The single record is larger than the payload limit on its own.
    oversized: bool = False


class PartitionBuffer:
    def __init__(self, batch_size: int, window_s: float, envelope: int, max_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.batch_size = batch_size
        self.window_s = window_s
        self.envelope = envelope
        self.max_bytes = max_bytes
        self.records: deque[Record] = deque()
        self.bytes = 0
        self.opened_at: float | None = None

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: Record, now: float) -> None:
        self.records.append(record)
        self.bytes += record.json_size()
        if self.opened_at is None:
            self.opened_at = now

    def extend(self, records: list[Record], now: float, size: int | None = None) -> None:
        """``add`` of each of ``records``, in one step (``size``: their JSON sizes summed, when known)."""
        if not records:
            return
        self.records.extend(records)
        self.bytes += _total_size(records) if size is None else size
        if self.opened_at is None:
            self.opened_at = now

    def payload_size(self) -> int:
        """The event size if every buffered record went into one batch."""
        return self.envelope + self.bytes + max(len(self.records) - 1, 0)

    def ready(self, now: float) -> bool:
        if not self.records:
            return False
        if len(self.records) >= self.batch_size or self.payload_size() > self.max_bytes:
            return True
        return self.opened_at is not None and now - self.opened_at >= self.window_s

    def deadline(self) -> float | None:
        """When the window closes (monotonic seconds), None when empty."""
        return None if self.opened_at is None else self.opened_at + self.window_s

    def take(self, now: float) -> Cut:
        """Cut the next batch (call when ``ready``); an empty buffer gives an empty cut."""
        records = self.records
        count = min(len(records), self.batch_size)
        if count == 1 and self.envelope + records[0].json_size() <= self.max_bytes:  # BatchSize 1, or a window's one
            r = records.popleft()
            self.bytes -= r.json_size()
            self.opened_at = now if records else None
            return Cut([r])
        if count:
            # Usually a whole BatchSize fits the payload limit: check that once, not record by record.
            taken = _total_size(islice(records, count))
            if self.envelope + taken + count - 1 <= self.max_bytes:
                if count == len(records):
                    out = list(records)
                    records.clear()
                else:
                    out = [records.popleft() for _ in range(count)]
                self.bytes -= taken
                self.opened_at = now if records else None
                return Cut(out)
        out = []
        size = self.envelope
        while records and len(out) < self.batch_size:
            n = records[0].json_size()
            extra = n + (1 if out else 0)
            if size + extra > self.max_bytes:
                break
            size += extra
            out.append(records.popleft())
            self.bytes -= n
        oversized = False
        if not out and records:
            # Alone it exceeds the limit: hand it over flagged, never drop it silently.
            r = records.popleft()
            self.bytes -= r.json_size()
            out, oversized = [r], True
        self.opened_at = now if records else None
        return Cut(out, oversized)

    def clear(self) -> None:
        self.records.clear()
        self.bytes = 0
        self.opened_at = None
