"""Lambda's Kafka event, byte for byte: the protocol part of the engine (no I/O, no policy).

    {"eventSource":"SelfManagedKafka","bootstrapServers":"h1:9092,h2:9092",
     "records":{"orders-0":[{"topic":"orders","partition":0,"offset":15,"timestamp":1545084650987,
                             "timestampType":"CREATE_TIME","key":"a2V5","value":"dmFsdWU=",
                             "headers":[{"h":[104,-61,-85]}]}]}}

MSK adds ``"eventSourceArn"`` and says ``"aws:kafka"``. ``key`` is absent for a null key, ``value`` is
``null`` for a tombstone, header values are arrays of Java's signed bytes. Each record's JSON size
is computed by arithmetic when it is polled (``Record.size``; a block's a column at a time,
``column_sizes``, for ``esm.block``), so a batch's exact size is known before it is built. HTTP functions
get the JSON (each record encoded once, the batch a join); Python handlers get the batch packed
(``functions.batch.pack_parts``) and their worker process builds the dict that ``json.loads`` of that JSON
would give.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import add
from typing import Any, NamedTuple

from pybase64 import b64encode

# confluent_kafka.TIMESTAMP_CREATE_TIME / TIMESTAMP_LOG_APPEND_TIME (librdkafka's fixed values), spelled
# out so that building events does not need confluent_kafka (~0.1 s to import).
_TIMESTAMP_TYPES = {1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}


class _Fields(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()
    #: The record's JSON size; 0 = not known (``json_size()`` computes it).
    size: int = 0


class Record(_Fields):
    """One consumed record. Satisfies retry.RecordLike / destinations.FailedRecord.

    A tuple underneath (``typing.NamedTuple``): ``esm.block.Block`` builds its records from its column lists
    in C (``tuple.__new__`` over ``zip``), with no Python code run per record.
    ``encoded`` (the cached JSON fragment) lives in the instance dict, created only when it is set.
    """

    #: The record's JSON object once encoded (``encode()``); b"" until then.
    encoded: bytes = b""

    @classmethod
    def from_message(cls, msg: Any) -> Record:
        """The record of one consumed message, its JSON size computed."""
        ts_code, ts = msg.timestamp()
        fields = (msg.topic(), msg.partition(), msg.offset(), ts, _TIMESTAMP_TYPES.get(ts_code, "NO_TIMESTAMP_TYPE"),
                  msg.key(), msg.value(), msg.headers() or ())
        return _new(cls, (*fields, _json_size_of(*fields)))

    def encode(self) -> bytes:
        """The record's JSON object as Lambda sends it (cached)."""
        if not self.encoded:
            self.encoded = _encode_record(self)
        return self.encoded

    def json_size(self) -> int:
        """``len(self.encode())``, computed without encoding."""
        if self.size:
            return self.size
        return len(self.encoded) if self.encoded else _json_size(self)

    def __repr__(self) -> str:
        return f"Record({self.topic}-{self.partition}@{self.offset})"


_new = tuple.__new__


class SchemaRecord(Record):
    """A record decoded with a schema registry: its key/value as the mapping's EventRecordFormat gives them,
    plus ``keySchemaMetadata`` / ``valueSchemaMetadata`` (only mappings with a SchemaRegistryConfig make these)."""

    #: {"keySchemaMetadata": {...}, "valueSchemaMetadata": {...}}, the attributes decoded
    schema_metadata: dict[str, Any]
    #: the same as JSON members, ``,"valueSchemaMetadata":{...}`` (callers cache it per schema id)
    _metadata_json: bytes

    def __new__(cls, base: Record, key: bytes | None, value: bytes | None, metadata: dict[str, Any],
                metadata_json: bytes | None = None) -> SchemaRecord:
        members = metadata_json if metadata_json is not None else metadata_members(metadata)
        fields = (base.topic, base.partition, base.offset, base.timestamp, base.timestamp_type, key, value, base.headers)
        r: SchemaRecord = _new(cls, (*fields, _json_size_of(*fields) + len(members)))
        r.schema_metadata = metadata
        r._metadata_json = members
        return r

    def encode(self) -> bytes:
        if not self.encoded:
            self.encoded = _encode_record(self)[:-1] + self._metadata_json + b"}"
        return self.encoded


def _signed(value: bytes | None) -> bytes:
    if not value:
        return b"[]"
    return b"[" + ",".join(map(str, array("b", value))).encode() + b"]"


_prefixes: dict[tuple[str, int], bytes] = {}


def _prefix(topic: str, partition: int) -> bytes:
    """``{"topic":"t","partition":0,"offset":`` — the same for every record of a partition."""
    key = (topic, partition)
    prefix = _prefixes.get(key)
    if prefix is None:
        if len(_prefixes) > 100_000:
            _prefixes.clear()
        prefix = _prefixes[key] = ('{"topic":' + json.dumps(topic) + ',"partition":' + str(partition) + ',"offset":').encode()
        if len(_prefix_sizes) > 100_000:
            _prefix_sizes.clear()
        _prefix_sizes.setdefault(topic, {})[partition] = len(prefix)
    return prefix


#: len(_prefix(topic, partition)) by topic, then partition (no tuple built per record).
_prefix_sizes: dict[str, dict[int, int]] = {}


def metadata_members(metadata: dict[str, Any]) -> bytes:
    """``,"keySchemaMetadata":{...},"valueSchemaMetadata":{...}``: what a SchemaRecord adds to its JSON object."""
    return b"".join(b"," + json.dumps(name).encode() + b":" + json.dumps(meta, separators=(",", ":")).encode()
                    for name, meta in metadata.items())


_TYPES = {"CREATE_TIME": b"CREATE_TIME", "LOG_APPEND_TIME": b"LOG_APPEND_TIME"}
# One bytes template per (key present, value present): a single formatting step per record.
_KV = b'%s%d,"timestamp":%d,"timestampType":"%s","key":"%s","value":"%s","headers":[%s]}'
_V = b'%s%d,"timestamp":%d,"timestampType":"%s","value":"%s","headers":[%s]}'
_K = b'%s%d,"timestamp":%d,"timestampType":"%s","key":"%s","value":null,"headers":[%s]}'
_NONE = b'%s%d,"timestamp":%d,"timestampType":"%s","value":null,"headers":[%s]}'
# Each template's length without its placeholders (%s %d %d %s [%s %s] %s = 2 bytes each).
_FIXED_KV, _FIXED_K, _FIXED_V, _FIXED_NONE = len(_KV) - 14, len(_K) - 12, len(_V) - 12, len(_NONE) - 10


def _headers(r: Record) -> bytes:
    return _headers_json(r.headers)


def _headers_json(headers: Sequence[tuple[str, bytes | None]]) -> bytes:
    if not headers:
        return b""
    return b",".join(b"{" + json.dumps(name).encode() + b":" + _signed(value) + b"}" for name, value in headers)


def _b64_len(n: int) -> int:
    return 4 * ((n + 2) // 3)


def _json_size(r: Record) -> int:
    """Exact size of ``_encode_record(r)`` by arithmetic: the batcher needs sizes, not bytes."""
    return _json_size_of(r.topic, r.partition, r.offset, r.timestamp, r.timestamp_type, r.key, r.value, r.headers)


def _json_size_of(topic: str, partition: int, offset: int, timestamp: int, timestamp_type: str, key: bytes | None,
                  value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> int:
    ts_type = _TYPES.get(timestamp_type) or timestamp_type.encode()
    n = len(_prefix(topic, partition)) + len(str(offset)) + len(str(timestamp)) + len(ts_type) + _FIXED_NONE
    n += len(_headers_json(headers)) if headers else 0
    if key is not None:
        n += _KEY_PART[len(key)]
    return n + (_VALUE_PART[len(value)] if value is not None else 0)


class _PartSizes(dict[int, int]):
    """What a key or value of n bytes adds to a record's JSON (its base64, quotes and member name, against
    ``_NONE``), by n (-1: null): a dict lookup in C instead of arithmetic in Python per record."""

    def __init__(self, extra: int) -> None:
        super().__init__({-1: 0})  # a null key or value adds nothing
        self.extra = extra

    def __missing__(self, n: int) -> int:
        if len(self) > 100_000:
            self.clear()
            self[-1] = 0
        size = self[n] = _b64_len(n) + self.extra
        return size


_KEY_PART, _VALUE_PART = _PartSizes(_FIXED_K - _FIXED_NONE), _PartSizes(_FIXED_V - _FIXED_NONE)
assert _FIXED_KV == _FIXED_NONE + _KEY_PART.extra + _VALUE_PART.extra  # the two parts add up
TYPE_NAMES = {0: "NO_TIMESTAMP_TYPE", **_TIMESTAMP_TYPES}


def column_sizes(topic: str, partition: int, offsets: list[int], stamps: list[int], types: str | list[str],
                 key_lens: list[int], value_lens: list[int]) -> list[int]:
    """``_json_size_of`` of records of one partition without headers, offsets ascending, a length of -1 for a null
    key or value: summed a column at a time (C loops), what is the same for every record (usually all but the
    sizes of keys of different lengths) added once."""
    n = len(offsets)
    fixed = _FIXED_NONE + len(_prefix(topic, partition))
    parts: list[Iterable[int]] = []
    for column, (low, high) in ((offsets, (offsets[0], offsets[-1])), (stamps, (min(stamps), max(stamps)))):
        if low >= 0 and len(str(low)) == len(str(high)):
            fixed += len(str(low))
        else:
            parts.append(map(len, map(str, column)))
    if isinstance(types, str):
        fixed += len(types)
    else:
        parts.append(map(len, types))
    for lens, table in ((key_lens, _KEY_PART), (value_lens, _VALUE_PART)):
        if lens.count(lens[0]) != n:
            low, high = min(lens), max(lens)
            if low < 0 or table[low] != table[high]:  # (a longer key never has a shorter base64)
                parts.append(map(table.__getitem__, lens))
                continue
        fixed += table[lens[0]]
    total: Iterable[int] = repeat(fixed, n)
    for part in parts:
        total = map(add, total, part)
    return list(total)


def _encode_record(r: Record) -> bytes:
    # Hot path for HTTP functions: one bytes formatting, no json.dumps of a dict.
    prefix = _prefix(r.topic, r.partition)
    ts_type = _TYPES.get(r.timestamp_type) or r.timestamp_type.encode()
    headers = _headers(r)
    if r.key is not None:
        if r.value is not None:
            return _KV % (prefix, r.offset, r.timestamp, ts_type, b64encode(r.key), b64encode(r.value), headers)
        return _K % (prefix, r.offset, r.timestamp, ts_type, b64encode(r.key), headers)
    if r.value is not None:
        return _V % (prefix, r.offset, r.timestamp, ts_type, b64encode(r.value), headers)
    return _NONE % (prefix, r.offset, r.timestamp, ts_type, headers)


class EventBuilder:
    """Builds invoke payloads for one mapping (its eventSource, ARN and bootstrap servers)."""

    def __init__(self, event_source: str, bootstrap_servers: Iterable[str], event_source_arn: str | None = None) -> None:
        head = '{"eventSource":' + json.dumps(event_source)
        if event_source_arn:
            head += ',"eventSourceArn":' + json.dumps(event_source_arn)
        head += ',"bootstrapServers":' + json.dumps(",".join(bootstrap_servers)) + ',"records":{'
        self._head = head.encode()
        #: The event's fields other than ``records``, for ``unpack_event`` in a worker process.
        self.envelope: dict[str, Any] = {"eventSource": event_source}
        if event_source_arn:
            self.envelope["eventSourceArn"] = event_source_arn
        self.envelope["bootstrapServers"] = ",".join(bootstrap_servers)
        self._tail = b"}}"

    @classmethod
    def for_mapping(cls, mapping: Any, bootstrap_servers: Iterable[str]) -> EventBuilder:
        return cls(mapping.event_source, bootstrap_servers, mapping.event_source_arn)

    def envelope_size(self, topic: str, partition: int) -> int:
        """Bytes a single-partition event adds around its records (commas not included)."""
        return len(self._head) + len(self._tail) + len(_partition_key(topic, partition)) + 2

    def size(self, records: Sequence[Record]) -> int:
        """Exact size of ``build(records)``."""
        keys = {(r.topic, r.partition) for r in records}
        total = len(self._head) + len(self._tail) + max(len(keys) - 1, 0)
        for topic, partition in keys:
            total += len(_partition_key(topic, partition)) + 2
        return total + sum(r.json_size() for r in records) + max(len(records) - len(keys), 0)

    def build(self, records: Sequence[Record]) -> bytes:
        """The event for records of one or more partitions (each partition's list in the given order)."""
        groups: dict[tuple[str, int], list[bytes]] = {}
        for r in records:
            groups.setdefault((r.topic, r.partition), []).append(r.encode())
        body = b",".join(
            _partition_key(topic, partition) + b"[" + b",".join(items) + b"]"
            for (topic, partition), items in groups.items()
        )
        return self._head + body + self._tail


def _partition_key(topic: str, partition: int) -> bytes:
    return (json.dumps(f"{topic}-{partition}") + ":").encode()
