"""Lambda's Kafka event, byte for byte: the protocol part of the engine (no I/O, no policy).

    {"eventSource":"SelfManagedKafka","bootstrapServers":"h1:9092,h2:9092",
     "records":{"orders-0":[{"topic":"orders","partition":0,"offset":15,"timestamp":1545084650987,
                             "timestampType":"CREATE_TIME","key":"a2V5","value":"dmFsdWU=",
                             "headers":[{"h":[104,-61,-85]}]}]}}

MSK adds ``"eventSourceArn"`` and says ``"aws:kafka"``. ``key`` is absent for a null key, ``value`` is
``null`` for a tombstone, header values are arrays of Java's signed bytes. Each record's JSON size
is computed by arithmetic when it is polled (``Record.size``), so a batch's exact size is known
before it is built. HTTP functions get the JSON (each record encoded once, the batch a join); Python
handlers get the batch packed (``functions.batch.pack_records``) and their worker process builds the
dict that ``json.loads`` of that JSON would give.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from pybase64 import b64encode

# The batch's packing belongs to the function runtime (it owns the trip to the worker); re-exported
# for the engine's invoker.
from triggerfish.functions.batch import pack_records as pack_records

# confluent_kafka.TIMESTAMP_CREATE_TIME / TIMESTAMP_LOG_APPEND_TIME (librdkafka's fixed values), spelled
# out so that building events does not need confluent_kafka (~0.1 s to import).
_TIMESTAMP_TYPES = {1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}


class Record:
    """One consumed record, with its event JSON fragment. Satisfies retry.RecordLike / destinations.FailedRecord."""

    __slots__ = ("topic", "partition", "offset", "timestamp", "timestamp_type", "key", "value", "headers", "encoded", "size")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp: int,
        timestamp_type: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] = (),
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.timestamp_type = timestamp_type
        self.key = key
        self.value = value
        self.headers = headers
        self.encoded = b""
        self.size = 0

    @classmethod
    def from_message(cls, msg: Any) -> Record:
        """The record of a consumed message, its JSON size already computed (the poll loop's hot path)."""
        ts_code, ts = msg.timestamp()
        # __init__'s assignments without its call (the poll loop runs this for every record)
        r = _new(cls)
        r.topic = topic = msg.topic()
        r.partition = partition = msg.partition()
        r.offset = offset = msg.offset()
        r.timestamp = ts
        r.timestamp_type = ts_type = _TIMESTAMP_TYPES.get(ts_code, "NO_TIMESTAMP_TYPE")
        r.key = key = msg.key()
        r.value = value = msg.value()
        r.headers = msg.headers() or ()
        r.encoded = b""
        if r.headers:
            r.size = _json_size(r)
        else:
            # _json_size inlined for the common case (no headers): saves a call and the prefix lookup per record
            prefix = _prefix_sizes.get(topic)
            n = (prefix[partition] if prefix is not None and partition in prefix else len(_prefix(topic, partition))) \
                + len(str(offset)) + len(str(ts)) + len(ts_type)
            if key is not None:
                n += ((len(key) + 2) // 3) * 4 + (_FIXED_KV if value is not None else _FIXED_K)
            else:
                n += _FIXED_V if value is not None else _FIXED_NONE
            r.size = n + (((len(value) + 2) // 3) * 4 if value is not None else 0)
        return r

    def encode(self) -> bytes:
        """The record's JSON object as Lambda sends it (cached)."""
        if not self.encoded:
            self.encoded = _encode_record(self)
        return self.encoded

    def json_size(self) -> int:
        """``len(self.encode())``, computed without encoding (cached)."""
        if not self.size:
            self.size = len(self.encoded) if self.encoded else _json_size(self)
        return self.size

    def __repr__(self) -> str:
        return f"Record({self.topic}-{self.partition}@{self.offset})"


_new = object.__new__


class SchemaRecord(Record):
    """A record decoded with a schema registry: its key/value as the mapping's EventRecordFormat gives them,
    plus ``keySchemaMetadata`` / ``valueSchemaMetadata`` (only mappings with a SchemaRegistryConfig make these)."""

    __slots__ = ("schema_metadata", "_metadata_json")

    def __init__(self, base: Record, key: bytes | None, value: bytes | None, metadata: dict[str, Any],
                 metadata_json: bytes | None = None) -> None:
        r = self
        r.topic, r.partition, r.offset = base.topic, base.partition, base.offset
        r.timestamp, r.timestamp_type, r.headers = base.timestamp, base.timestamp_type, base.headers
        r.key, r.value, r.encoded = key, value, b""
        #: {"keySchemaMetadata": {...}, "valueSchemaMetadata": {...}}, the attributes decoded
        self.schema_metadata = metadata
        #: the same as JSON members, ``,"valueSchemaMetadata":{...}`` (callers cache it per schema id)
        self._metadata_json = metadata_json if metadata_json is not None else metadata_members(metadata)
        self.size = _json_size(self) + len(self._metadata_json)

    def encode(self) -> bytes:
        if not self.encoded:
            self.encoded = _encode_record(self)[:-1] + self._metadata_json + b"}"
        return self.encoded

    def json_size(self) -> int:
        return self.size


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
    if not r.headers:
        return b""
    return b",".join(b"{" + json.dumps(name).encode() + b":" + _signed(value) + b"}" for name, value in r.headers)


def _b64_len(n: int) -> int:
    return 4 * ((n + 2) // 3)


def _json_size(r: Record) -> int:
    """Exact size of ``_encode_record(r)`` by arithmetic: the batcher needs sizes, not bytes."""
    ts_type = _TYPES.get(r.timestamp_type) or r.timestamp_type.encode()
    n = len(_prefix(r.topic, r.partition)) + len(str(r.offset)) + len(str(r.timestamp)) + len(ts_type)
    n += len(_headers(r)) if r.headers else 0
    if r.key is not None:
        n += _b64_len(len(r.key))
        if r.value is not None:
            return n + _b64_len(len(r.value)) + len(_KV) - 14
        return n + len(_K) - 12
    if r.value is not None:
        return n + _b64_len(len(r.value)) + len(_V) - 12
    return n + len(_NONE) - 10


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
