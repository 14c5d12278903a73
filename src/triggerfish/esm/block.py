"""A run of records of one partition kept as columns: how a poll's records travel from the consumer to the worker.

A poll of 1,000 messages becomes one ``Block`` per partition run: lists of offsets, timestamps, keys, values
and JSON sizes, each filled by one ``map`` over the messages in C. A partition's buffer fills its last block
up to a BatchSize (``Block.fill``), so a batch is usually one block cut whole; ``functions.batch.pack_parts``
ships its columns as they are, and the commit position is the last offset plus one: the hot path never builds
a tuple per record nor transposes records back into columns (the engine's GIL, which bounds its throughput, is
spent on the client's own work).

A block is a ``Sequence[Record]`` for everything else (retries, bisection, destinations, HTTP functions, logs):
iterating or indexing it builds its ``Record`` tuples, once. Polls with headers or of several topics take the
record-by-record path (``Record.from_message``) instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain, groupby, repeat
from operator import itemgetter
from typing import Any, overload

from triggerfish.esm.event import TYPE_NAMES, Record, column_sizes
from triggerfish.functions.batch import payload_lengths

_new = tuple.__new__
_CODE, _STAMP = itemgetter(0), itemgetter(1)
#: A block's columns with one entry per record (``types`` may be one name for all).
_COLUMNS = ("offsets", "timestamps", "keys", "values", "key_lens", "value_lens", "sizes")


class Block(Sequence[Record]):
    """Consecutive records of one topic-partition, in offset order, as columns (see the module docstring)."""

    __slots__ = ("topic", "partition", "offsets", "timestamps", "types", "keys", "values", "key_lens", "value_lens",
                 "sizes", "_records")

    def __init__(self, topic: str, partition: int, offsets: list[int], timestamps: list[int], types: str | list[str],
                 keys: list[bytes | None], values: list[bytes | None], key_lens: list[int], value_lens: list[int],
                 sizes: list[int]) -> None:
        self.topic = topic
        self.partition = partition
        self.offsets = offsets
        self.timestamps = timestamps
        #: The timestamp type of every record (one name, as a rule), or each record's.
        self.types = types
        self.keys = keys
        self.values = values
        #: Each key's and value's length, -1 for a null (``functions.batch.payload_lengths``).
        self.key_lens = key_lens
        self.value_lens = value_lens
        #: Each record's JSON size (``Record.json_size``).
        self.sizes = sizes
        self._records: list[Record] | None = None

    @property
    def size(self) -> int:
        """The records' JSON sizes summed."""
        return sum(self.sizes)

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> Block: ...
    def __getitem__(self, index: int | slice) -> Record | Block:
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise ValueError("a Block is sliced in order only")
            types = self.types if isinstance(self.types, str) else self.types[index]
            return Block(self.topic, self.partition, self.offsets[index], self.timestamps[index], types,
                         self.keys[index], self.values[index], self.key_lens[index], self.value_lens[index],
                         self.sizes[index])
        if self._records is not None:
            return self._records[index]
        i = range(len(self.offsets))[index]  # (an IndexError as a list's)
        types = self.types if isinstance(self.types, str) else self.types[i]
        return _new(Record, (self.topic, self.partition, self.offsets[i], self.timestamps[i], types, self.keys[i],
                             self.values[i], (), self.sizes[i]))

    def fill(self, more: Block, room: int) -> Block | None:
        """Append up to ``room`` of ``more``'s records (the same partition's, next in offset order) to this block,
        which is still in a buffer, never handed out; what did not fit, or None.

        A buffer fills its last block up to a BatchSize this way: the batch is then that block, cut out whole,
        instead of several blocks' columns copied into one (each copy touches every record's objects again,
        long after they were polled, out of the CPU's caches).
        """
        if self._records is not None or (self.types != more.types and (isinstance(self.types, str)
                                                                       or isinstance(more.types, str))):
            return more  # its records were built, or one timestamp type against per-record ones: left apart
        taken = more if len(more) <= room else more[:room]
        for column in _COLUMNS:
            getattr(self, column).extend(getattr(taken, column))
        if not isinstance(self.types, str):
            self.types.extend(taken.types)
        return None if taken is more else more[room:]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def records(self) -> list[Record]:
        """The records as ``Record`` tuples (built on first use, in C, and kept)."""
        if self._records is None:
            types = repeat(self.types) if isinstance(self.types, str) else self.types
            self._records = list(map(_new, repeat(Record), zip(
                repeat(self.topic), repeat(self.partition), self.offsets, self.timestamps, types, self.keys,
                self.values, repeat(()), self.sizes)))
        return self._records

    def __repr__(self) -> str:
        span = f"{self.offsets[0]}..{self.offsets[-1]}" if self.offsets else "empty"
        return f"Block({self.topic}-{self.partition}@{span}, {len(self.offsets)} records)"


def concat(blocks: Sequence[Block]) -> Block:
    """Consecutive blocks of one partition as one (a batch cut across polls)."""
    if len(blocks) == 1:
        return blocks[0]
    first = blocks[0]
    types: str | list[str] = first.types
    if any(b.types != types for b in blocks):  # (a list never equals a str: per-record types in one of them)
        types = _joined(repeat(b.types, len(b)) if isinstance(b.types, str) else b.types for b in blocks)
    return Block(first.topic, first.partition, _joined(b.offsets for b in blocks),
                 _joined(b.timestamps for b in blocks), types, _joined(b.keys for b in blocks),
                 _joined(b.values for b in blocks), _joined(b.key_lens for b in blocks),
                 _joined(b.value_lens for b in blocks), _joined(b.sizes for b in blocks))


def _joined(lists: Any) -> list[Any]:
    return list(chain.from_iterable(lists))


def blocks_of(messages: Sequence[Any]) -> list[Block] | None:
    """A poll's messages (none carrying an error) as one block per partition run, their JSON sizes computed;
    None when a message has headers or the poll spans several topics (the caller takes them one by one)."""
    if not messages:
        return []
    kind = type(messages[0])  # confluent_kafka.Message: its accessors, called from C by map()
    topic = messages[0].topic()  # one str shared by the poll's records (and compared by identity downstream)
    n = len(messages)
    if any(map(kind.headers, messages)) or list(map(kind.topic, messages)).count(topic) != n:
        return None
    partitions = list(map(kind.partition, messages))
    offsets = list(map(kind.offset, messages))
    stamped = list(map(kind.timestamp, messages))
    stamps = list(map(_STAMP, stamped))
    codes = list(map(_CODE, stamped))
    keys = list(map(kind.key, messages))
    values = list(map(kind.value, messages))
    types = TYPE_NAMES[codes[0]] if codes.count(codes[0]) == n else list(map(TYPE_NAMES.__getitem__, codes))
    key_lens, value_lens = payload_lengths(keys), payload_lengths(values)
    if partitions.count(partitions[0]) == n:  # the usual poll: librdkafka hands a fetch over a partition at a time
        return [_block(topic, partitions[0], offsets, stamps, types, keys, values, key_lens, value_lens)]
    blocks, start = [], 0
    for partition, count in [(p, len(list(run))) for p, run in groupby(partitions)]:  # (list: counted in C)
        end = start + count
        blocks.append(_block(topic, partition, offsets[start:end], stamps[start:end],
                             types if isinstance(types, str) else types[start:end], keys[start:end],
                             values[start:end], key_lens[start:end], value_lens[start:end]))
        start = end
    return blocks


def _block(topic: str, partition: int, offsets: list[int], stamps: list[int], types: str | list[str],
           keys: list[bytes | None], values: list[bytes | None], key_lens: list[int], value_lens: list[int]) -> Block:
    sizes = column_sizes(topic, partition, offsets, stamps, types, key_lens, value_lens)
    return Block(topic, partition, offsets, stamps, types, keys, values, key_lens, value_lens, sizes)


#: What a poll gives the batcher: blocks (the hot path) or records (filters, headers, schemas).
Polled = list[Block] | list[Record]


def count(polled: Polled) -> int:
    """How many records ``polled`` holds."""
    return sum(map(len, polled)) if polled and isinstance(polled[0], Block) else len(polled)


def flat(polled: Polled) -> list[Record]:
    """``polled`` as records (Queue mode acknowledges record by record)."""
    if polled and isinstance(polled[0], Block):
        return [r for block in polled for r in block]
    return polled  # type: ignore[return-value]


def last_offset(records: Sequence[Record]) -> int:
    """The offset of the last of ``records`` (of a block without building its records)."""
    return records.offsets[-1] if isinstance(records, Block) else records[-1].offset
