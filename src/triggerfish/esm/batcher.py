"""When a batch closes: BatchSize records, the batching window, or the 6 MB payload limit (policy only).

One ``PartitionBuffer`` per assigned partition holds polled records until the partition's next
batch is cut, as they came: blocks of columns (``esm.block``) or lists of records; a batch of blocks is a
block. A batch is ready when it has ``batch_size`` records, when its window (started by its
first record) has elapsed, or when one more record would push the event JSON past
``max_bytes`` (6,291,456). ``take`` cuts the largest prefix that fits both limits; a record that
cannot fit even alone comes back flagged ``oversized`` so the caller reports it instead of
dropping it silently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from triggerfish.esm.block import Block, concat
from triggerfish.esm.config import MAX_PAYLOAD_BYTES
from triggerfish.esm.event import Record

_SIZE = attrgetter("size")


def known_size(records: Sequence[Record]) -> int | None:
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
    #: A ``Block`` on the hot path (see ``esm.block``), else a list of records.
    records: Sequence[Record]
    #: The single record is larger than the payload limit on its own.
    oversized: bool = False


class PartitionBuffer:
    """A partition's polled records until its next batch is cut: a queue of chunks as they were polled, each a
    ``Block`` (the hot path: batches are cut by slicing its columns) or a list of records."""

    def __init__(self, batch_size: int, window_s: float, envelope: int, max_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.batch_size = batch_size
        self.window_s = window_s
        self.envelope = envelope
        self.max_bytes = max_bytes
        self._chunks: deque[Sequence[Record]] = deque()
        #: How many records of the first chunk were taken already (it is sliced, not copied per batch).
        self._head = 0
        self._count = 0
        #: The chunk ``add`` appends to (its own list, never one handed to ``extend``).
        self._adding: list[Record] = []
        self.bytes = 0
        self.opened_at: float | None = None

    def __len__(self) -> int:
        return self._count

    @property
    def records(self) -> list[Record]:
        """The buffered records, in order (built for the asking: bookkeeping uses ``len``)."""
        out = [r for chunk in self._chunks for r in chunk]
        return out[self._head:]

    def add(self, record: Record, now: float) -> None:
        if self._chunks and self._chunks[-1] is self._adding:
            self._adding.append(record)
        else:
            self._adding = [record]
            self._chunks.append(self._adding)
        self._count += 1
        self.bytes += record.json_size()
        if self.opened_at is None:
            self.opened_at = now

    def extend(self, records: Sequence[Record], now: float, size: int | None = None) -> None:
        """``add`` of each of ``records``, in one step (``size``: their JSON sizes summed, when known); the buffer
        keeps ``records`` itself (do not change it afterwards)."""
        if not records:
            return
        self._count += len(records)
        self.bytes += _total_size(records) if size is None else size
        if self.opened_at is None:
            self.opened_at = now
        tail = self._chunks[-1] if self._chunks else None
        if isinstance(records, Block) and isinstance(tail, Block) and len(tail) < self.batch_size:
            rest = tail.fill(records, self.batch_size - len(tail))  # a batch's records in one block, cut whole
            if rest is None:
                return
            records = rest
        self._chunks.append(records)

    def payload_size(self) -> int:
        """The event size if every buffered record went into one batch."""
        return self.envelope + self.bytes + max(self._count - 1, 0)

    def ready(self, now: float) -> bool:
        if not self._count:
            return False
        if self._count >= self.batch_size or self.payload_size() > self.max_bytes:
            return True
        return self.opened_at is not None and now - self.opened_at >= self.window_s

    def deadline(self) -> float | None:
        """When the window closes (monotonic seconds), None when empty."""
        return None if self.opened_at is None else self.opened_at + self.window_s

    def take(self, now: float) -> Cut:
        """Cut the next batch (call when ``ready``); an empty buffer gives an empty cut."""
        count = min(self._count, self.batch_size)
        if not count:
            return Cut([])
        if count == 1:  # BatchSize 1 (or a window's one record): the record, not a block of one
            record = self._chunks[0][self._head]
            if self.envelope + record.json_size() <= self.max_bytes:
                self._drop(1, record.json_size(), now)
                return Cut([record])
        pieces = self._peek(count)
        # Usually a whole BatchSize fits the payload limit: check that once, not record by record.
        taken = sum(map(_piece_size, pieces))
        if self.envelope + taken + count - 1 <= self.max_bytes:
            self._drop(count, taken, now)
            return Cut(_one(pieces))
        records = [r for piece in pieces for r in piece]
        out: list[Record] = []
        size = self.envelope
        for r in records:
            extra = r.json_size() + (1 if out else 0)
            if size + extra > self.max_bytes:
                break
            size += extra
            out.append(r)
        oversized = not out
        if oversized:  # alone it exceeds the limit: hand it over flagged, never drop it silently
            out = records[:1]
        self._drop(len(out), sum(r.json_size() for r in out), now)
        return Cut(out, oversized)

    def _peek(self, count: int) -> list[Sequence[Record]]:
        """The next ``count`` records, as slices of the chunks they are in."""
        pieces: list[Sequence[Record]] = []
        start = self._head
        for chunk in self._chunks:
            end = min(len(chunk), start + count)
            pieces.append(chunk if start == 0 and end == len(chunk) else chunk[start:end])
            count -= end - start
            if not count:
                return pieces
            start = 0
        return pieces

    def _drop(self, count: int, size: int, now: float) -> None:
        """Take the next ``count`` records (JSON ``size`` in all) out of the buffer."""
        self._count -= count
        self.bytes -= size
        self.opened_at = now if self._count else None
        chunks = self._chunks
        while count:
            left = len(chunks[0]) - self._head
            if left > count:
                self._head += count
                return
            chunks.popleft()
            self._head = 0
            count -= left

    def clear(self) -> None:
        self._chunks.clear()
        self._head = self._count = 0
        self.bytes = 0
        self.opened_at = None


def _piece_size(piece: Sequence[Record]) -> int:
    return piece.size if isinstance(piece, Block) else _total_size(piece)


def _one(pieces: list[Sequence[Record]]) -> Sequence[Record]:
    """A batch's pieces as one sequence: a block when they all are (the hot path), else a list of records."""
    if len(pieces) == 1:
        return pieces[0]
    if all(isinstance(piece, Block) for piece in pieces):
        return concat(pieces)  # type: ignore[arg-type]
    return [r for piece in pieces for r in piece]
