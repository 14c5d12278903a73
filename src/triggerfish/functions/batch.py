"""A Kafka batch's trip to a handler's worker process: ``pack_records`` in the engine,
``unpack_event`` in the worker.

The worker builds the event dict itself, exactly what ``json.loads`` of Lambda's event JSON
(``esm.event.EventBuilder.build``) would give, so the engine never encodes JSON for Python handlers
and the worker never parses it. The blob only travels over the runtime's own pipe (``frames``).
"""

from __future__ import annotations

import gc
import pickle
import struct
from array import array
from binascii import b2a_base64
from collections.abc import Iterable, Sequence
from itertools import accumulate, repeat
from typing import Any, Protocol, TypeVar, cast

from pybase64 import b64encode_as_string


class _BatchRecord(Protocol):
    """What ``pack_records`` reads of a record (``esm.event.Record`` has it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def timestamp_type(self) -> str: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


def pack_records(envelope: dict[str, Any], records: Sequence[_BatchRecord]) -> bytes:
    """A batch as one compact blob for a worker process (see ``unpack_event``): ``pack_parts`` joined."""
    return b"".join(pack_parts(envelope, records))


def pack_parts(envelope: dict[str, Any], records: Sequence[_BatchRecord]) -> Parts:
    """The pieces of ``pack_records``' blob, in order, not joined: the runtime writes them straight into the
    worker's shared region (one copy of each payload instead of a join into a 1 MB block and a copy of that).

    A 4-byte length, the pickled columns (envelope, partition runs, offsets, timestamps, timestamp
    types, key and value lengths with -1 for null, headers of the records that have any), then every
    key and every value raw: column lists built in C instead of a tuple per record, and the 1 KB
    payloads copied once instead of through pickle's buffer on both sides of the pipe.
    """
    if hasattr(records, "value_lens"):  # esm.block.Block: one partition's columns, shipped as they are
        block = cast(_Columns, records)
        offsets = block.offsets
        low, high = offsets[0], offsets[-1]
        return _packed(envelope, [(block.topic, block.partition, len(offsets))],
                       # in offset order: with no gap (no compaction, no transaction markers) a range, 3 numbers
                       range(low, high + 1) if high - low == len(offsets) - 1 >= _RANGE_MIN else offsets,
                       block.timestamps, block.types, (block.key_lens, block.keys), (block.value_lens, block.values),
                       {})
    first = records[0]
    if len(records) == 1:  # BatchSize 1 (low latency): the same columns without the walks over the batch
        return _pack_one(envelope, first)
    n = len(records)
    if isinstance(first, tuple):  # esm.event.Record: the columns by one transposition in C
        topics, partitions, offsets, timestamps, types, keys, values, headers = list(zip(*records, strict=True))[:8]
    else:
        topics, partitions = [r.topic for r in records], [r.partition for r in records]
        offsets, timestamps = [r.offset for r in records], [r.timestamp for r in records]
        types, keys, values = [r.timestamp_type for r in records], [r.key for r in records], [r.value for r in records]
        headers = [r.headers for r in records]
    t0, p0 = topics[0], partitions[0]
    if topics.count(t0) == n and partitions.count(p0) == n:
        runs: list[tuple[str, int, int]] = [(t0, p0, n)]
    else:
        runs = []
        for t, p in zip(topics, partitions, strict=True):
            if runs and runs[-1][0] == t and runs[-1][1] == p:
                runs[-1] = (t, p, runs[-1][2] + 1)
            else:
                runs.append((t, p, 1))
    extra: tuple[Any, ...] = ()
    if hasattr(first, "schema_metadata"):  # a schema registry mapping: all its records have it
        extra = ({i: m for i, r in enumerate(records) if (m := r.schema_metadata)},)  # type: ignore[attr-defined]
    return _packed(envelope, runs, offsets, timestamps, types[0] if types.count(types[0]) == n else types,
                   (payload_lengths(keys), keys), (payload_lengths(values), values),
                   {i: list(h) for i, h in enumerate(headers) if h} if any(headers) else {}, *extra)


#: Offsets cross as a range from this many on (below, unpickling ``range`` costs more than the ints).
_RANGE_MIN = 32


class _Columns(Protocol):
    """A batch of one partition as columns, offsets ascending (``esm.block.Block``): what ``pack_parts`` ships
    without a transposition."""

    topic: str
    partition: int
    offsets: list[int]
    timestamps: list[int]
    types: str | list[str]
    keys: list[bytes | None]
    values: list[bytes | None]
    key_lens: list[int]
    value_lens: list[int]

    def __len__(self) -> int: ...


def _packed(envelope: dict[str, Any], runs: list[tuple[str, int, int]], offsets: Sequence[int],
            timestamps: Sequence[int], types: str | Sequence[str], keys: tuple[list[int], Sequence[bytes | None]],
            values: tuple[list[int], Sequence[bytes | None]], headers: dict[int, list[tuple[str, bytes | None]]],
            *schemas: dict[int, Any]) -> Parts:
    """The blob's pieces from its columns; ``keys`` and ``values`` with their ``payload_lengths``."""
    (key_lens, key_column), (value_lens, value_column) = keys, values
    key_ints, value_ints = _int_column(key_lens), _int_column(value_lens)
    value_nulls = _nulls(value_ints, value_lens)
    meta = pickle.dumps((envelope, runs, _int_column(offsets), _int_column(timestamps), types, key_ints, value_ints,
                         headers, *schemas), protocol=pickle.HIGHEST_PROTOCOL)
    # The keys and values go in raw after the pickled columns: one copy, none through pickle's buffer. The keys
    # (short, as a rule) joined: one piece instead of a thousand tiny ones for the region's writer.
    joined_keys = b"".join(_present(key_column, _nulls(key_ints, key_lens)))
    parts = Parts([_META_LEN.pack(len(meta)), meta, joined_keys, *_present(value_column, value_nulls)])
    # (a null's length is -1: added back)
    parts.nbytes = _META_LEN.size + len(meta) + len(joined_keys) + _total(value_ints, value_lens) + value_nulls
    return parts


def _int_column(column: Sequence[int]) -> Sequence[int] | tuple[int, int] | array[int]:
    """A column of ints as it crosses: a ``range`` as it is, the same number throughout as (number, count), any
    other as a machine array. Pickle writes and reads a list's thousand ints one by one (~90 us a batch on the
    two sides for the lengths and timestamps); an array is one copy of its bytes (``_ints`` undoes this)."""
    if isinstance(column, range) or not column:
        return column
    first = column[0]
    # (the last one first: timestamps and offsets differ there, and count would compare every one)
    if column[-1] == first and column.count(first) == len(column):
        return (first, len(column))
    return array("q", column)


def _nulls(crossing: Sequence[int] | tuple[int, int] | array[int], lengths: Sequence[int]) -> int:
    """How many of ``lengths`` are -1 (nulls), from ``_int_column``'s form of them when it says (a length of 1 KB
    is an int object of its own each time: counting compares them one by one)."""
    if isinstance(crossing, tuple):
        number, count = crossing
        return count if number == -1 else 0
    return lengths.count(-1)


def _total(crossing: Sequence[int] | tuple[int, int] | array[int], lengths: Sequence[int]) -> int:
    """The sum of ``lengths`` with a null's -1 in it, from ``_int_column``'s form when it is a number and a count."""
    if isinstance(crossing, tuple):
        number, count = crossing
        return int(number * count)
    return sum(lengths)


def _ints(column: Sequence[int] | tuple[int, int] | array[int]) -> Sequence[int]:
    """A column of ints from ``_int_column`` (or a list, from ``_pack_one``) as a sequence to index and slice."""
    if isinstance(column, array):
        return column.tolist()
    if isinstance(column, tuple):
        number, count = column
        return [number] * count
    return column


class Parts(list[bytes]):
    """A packed batch's pieces (``pack_parts``), which know their length in all: the runtime needs it, and
    adding up the lengths of a thousand values touches a thousand objects long out of the CPU's caches."""

    nbytes: int


def payload_lengths(column: Sequence[bytes | None]) -> list[int]:
    """Each key's or value's length, -1 for null.

    ``map(len)`` in C first: it stops at the first null (a TypeError), which is cheaper than finding out
    with ``count(None)`` (a rich comparison per element) when there are none, as is usual.
    """
    try:
        return list(map(len, column))  # type: ignore[arg-type]  # no None in it
    except TypeError:
        if column.count(None) == len(column):  # no keys at all, as in many topics: no walk in Python
            return [-1] * len(column)
        return [-1 if b is None else len(b) for b in column]


def _present(column: Sequence[bytes | None], nulls: int) -> Sequence[bytes]:
    """``column`` without its ``nulls`` nulls."""
    return column if not nulls else [b for b in column if b is not None]  # type: ignore[return-value]


_META_LEN = struct.Struct(">I")


def _pack_one(envelope: dict[str, Any], r: _BatchRecord) -> Parts:
    key, value = r.key, r.value
    columns: tuple[Any, ...] = (
        envelope, [(r.topic, r.partition, 1)], [r.offset], [r.timestamp], r.timestamp_type,
        [-1 if key is None else len(key)], [-1 if value is None else len(value)],
        {0: list(r.headers)} if r.headers else {},
    )
    if hasattr(r, "schema_metadata"):
        metadata = r.schema_metadata
        columns += ({0: metadata} if metadata else {},)
    meta = pickle.dumps(columns, protocol=pickle.HIGHEST_PROTOCOL)
    parts = Parts([_META_LEN.pack(len(meta)), meta, key or b"", value or b""])
    parts.nbytes = _META_LEN.size + len(meta) + len(key or b"") + len(value or b"")
    return parts


def unpack_event(blob: bytes | memoryview) -> dict[str, Any]:
    """The event dict from ``pack_records``: exactly what ``json.loads(EventBuilder.build(...))`` gives,
    built directly (in the worker process, so the engine never encodes JSON for Python handlers)."""
    # Every dict and list made here hangs off the event, so there are no cycles to find: the young-generation
    # collections that thousands of new containers would trigger only walk them (~1/3 of the time here).
    if not gc.isenabled():
        return _unpack_event(blob)
    gc.disable()
    try:
        return _unpack_event(blob)
    finally:
        gc.enable()


def _unpack_event(blob: bytes | memoryview) -> dict[str, Any]:
    view = memoryview(blob)
    (meta_len,) = _META_LEN.unpack_from(view)
    start = _META_LEN.size + meta_len
    envelope, runs, offsets, timestamps, types, key_ints, value_ints, headers, *schemas = pickle.loads(
        view[_META_LEN.size:start])
    offsets, timestamps, key_lens, value_lens = _ints(offsets), _ints(timestamps), _ints(key_ints), _ints(value_ints)
    if len(value_lens) == 1 and not headers and not schemas:  # BatchSize 1: the one record without the walks
        return _one_record(view[start:], envelope, runs[0], offsets[0], timestamps[0],
                           types if isinstance(types, str) else types[0], key_lens[0], value_lens[0])
    metadata = schemas[0] if schemas else None
    null_keys = _nulls(key_ints, key_lens)
    keys_end = start + _total(key_ints, key_lens) + null_keys  # a null key (-1) takes no bytes
    keys = _keys(bytes(view[start:keys_end]), key_lens, null_keys)
    values = _values(view[keys_end:], value_lens, _nulls(value_ints, value_lens))
    same_type = isinstance(types, str)
    groups: dict[str, list[dict[str, Any]]] = {}
    in_batch_order: list[dict[str, Any]] = []  # only for headers and metadata, found by index in the batch
    i = 0
    for topic, partition, count in runs:
        j = i + count
        keyed = {"topic": topic, "partition": partition, "offset": 0, "timestamp": 0,
                 "timestampType": types if same_type else "", "key": "", "value": None, "headers": None}
        records = _records(keyed, offsets[i:j], timestamps[i:j], None if same_type else types[i:j],
                           repeat(None, count) if keys is None else keys[i:j], values[i:j])
        if headers or metadata:
            in_batch_order += records
        group = groups.setdefault(f"{topic}-{partition}", records)
        if group is not records:  # the partition again after another one's run: in offset order after its first
            group += records
        i = j
    if in_batch_order:
        _add_headers_and_metadata(in_batch_order, headers, metadata)
    event = dict(envelope)
    event["records"] = groups
    return event


def _one_record(payloads: memoryview, envelope: dict[str, Any], run: tuple[str, int, int], offset: int,
                timestamp: int, timestamp_type: str, key_len: int, value_len: int) -> dict[str, Any]:
    """The event of a batch of one record without headers (a small invocation): its dict built directly, in
    Lambda's key order (a null key's record has no ``"key"``)."""
    topic, partition, _ = run
    record: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset, "timestamp": timestamp,
                              "timestampType": timestamp_type}
    value_start = max(key_len, 0)  # a null key (-1) takes no bytes
    if key_len >= 0:
        record["key"] = _base64(payloads[:key_len])
    record["value"] = None if value_len < 0 else _base64(payloads[value_start:value_start + value_len])
    record["headers"] = []
    event = dict(envelope)
    event["records"] = {f"{topic}-{partition}": [record]}
    return event


def _base64(piece: memoryview) -> str:
    """A key's or value's base64: binascii for short ones (see ``_keys``), SIMD base64 for the rest."""
    return b2a_base64(piece, newline=False).decode() if len(piece) <= _SHORT else b64encode_as_string(piece)


def _records(keyed: dict[str, Any], offsets: Sequence[int], timestamps: Sequence[int], types: list[str] | None,
             keys: Iterable[str | None], values: list[str | None]) -> list[dict[str, Any]]:
    """One run's record dicts, each a copy of a template in Lambda's key order with the record's own
    fields set (``dict(template, **fields)``: the template's keys table copied in C, ~1/4 less than a
    dict display of the eight fields); a null key's record has no ``"key"``, as Lambda's."""
    unkeyed = {name: v for name, v in keyed.items() if name != "key"}
    if types is None:  # the batch's one timestamp type is in the templates
        return [dict(keyed, offset=offset, timestamp=timestamp, key=key, value=value, headers=[])
                if key is not None else dict(unkeyed, offset=offset, timestamp=timestamp, value=value, headers=[])
                for offset, timestamp, key, value in zip(offsets, timestamps, keys, values, strict=True)]
    return [dict(keyed, offset=offset, timestamp=timestamp, timestampType=ts_type, key=key, value=value, headers=[])
            if key is not None else
            dict(unkeyed, offset=offset, timestamp=timestamp, timestampType=ts_type, value=value, headers=[])
            for offset, timestamp, ts_type, key, value in zip(offsets, timestamps, types, keys, values, strict=True)]


def _keys(raw: bytes, lengths: Sequence[int], nulls: int) -> list[str | None] | None:
    """Each key's base64 (None for a null key; None for the lot when every key is null).

    Keys repeat within a batch in most topics (an id per entity): each distinct key is encoded once
    then, and the records share its string (a str is immutable: no handler can tell).
    """
    n = len(lengths)
    if nulls == n:
        return None
    pieces: Sequence[bytes | None]
    if nulls:
        pieces = _with_nulls(raw, lengths)
    else:  # split in C by one struct format ("3s5s..."): a third of slicing each key in Python. Not through
        # struct.unpack: its cache would keep up to 100 of these one-batch formats (~35 bytes a record each).
        pieces = struct.Struct(_split_format(lengths)).unpack(raw)
    distinct = set(pieces)
    if len(distinct) * 2 > n:  # mostly unique keys: a lookup table would cost more than it saves
        if len(raw) <= _SHORT * (n - nulls):
            # binascii's scalar loop is done before pybase64 has parsed its arguments and let go of the GIL
            # and taken it back: ~1/3 less a key of up to 64 bytes (the same characters)
            return [None if piece is None else b2a_base64(piece, newline=False).decode() for piece in pieces]
        return [None if piece is None else b64encode_as_string(piece) for piece in pieces]
    encoded: dict[bytes | None, str | None] = {piece: b64encode_as_string(piece) for piece in distinct if piece is not None}
    encoded[None] = None
    return list(map(encoded.__getitem__, pieces))


_SPLIT_CODES = [f"{n}s" for n in range(256)]
#: Keys or values this long or shorter on average are encoded with binascii (see ``_keys``).
_SHORT = 64


def _split_format(lengths: Sequence[int]) -> str:
    """The struct format that cuts consecutive byte strings of these lengths apart."""
    try:
        return "".join(map(_SPLIT_CODES.__getitem__, lengths))
    except IndexError:  # a key of 256 bytes or more
        return "".join(map("{}s".format, lengths))


def _values(view: memoryview, lengths: Sequence[int], nulls: int) -> list[str | None]:
    """Each value's base64, None for a tombstone (``nulls`` of them): SIMD base64 straight to str, byte-identical
    to binascii's and ~5x faster on 1 KB (most of the worker's time), read in place from ``view``."""
    b64 = b64encode_as_string
    if nulls:
        return [None if piece is None else b64(piece) for piece in _with_nulls(view, lengths)]
    bounds = list(accumulate(lengths, initial=0))
    if bounds[-1] <= _SHORT * len(lengths):  # small values: binascii, as short keys (see ``_keys``)
        return [b2a_base64(view[begin:end], newline=False).decode() for begin, end in zip(bounds, bounds[1:], strict=False)]
    return [b64(view[begin:end]) for begin, end in zip(bounds, bounds[1:], strict=False)]


_Bytes = TypeVar("_Bytes", bytes, memoryview)


def _with_nulls(data: _Bytes, lengths: Sequence[int]) -> list[_Bytes | None]:
    """``data`` cut into consecutive pieces of ``lengths``, None where a length is -1 (a null takes no bytes)."""
    ends = accumulate([n if n > 0 else 0 for n in lengths])
    return [None if n < 0 else data[end - n:end] for n, end in zip(lengths, ends, strict=True)]


def _add_headers_and_metadata(records: list[dict[str, Any]], headers: dict[int, list[tuple[str, bytes | None]]],
                              metadata: dict[int, dict[str, Any]] | None) -> None:
    """Headers as Lambda's arrays of Java's signed bytes, and a schema registry's metadata, on the few
    records that have them (by index in the batch)."""
    for j, record_headers in headers.items():
        records[j]["headers"] = [{name: array("b", v).tolist() if v else []} for name, v in record_headers]
    for j, fields in (metadata or {}).items():
        records[j].update(fields)
