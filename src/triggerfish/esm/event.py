"""Lambda's Kafka event, byte for byte: the protocol part of the engine (no I/O, no policy).

    {"eventSource":"SelfManagedKafka","bootstrapServers":"h1:9092,h2:9092",
     "records":{"orders-0":[{"topic":"orders","partition":0,"offset":15,"timestamp":1545084650987,
                             "timestampType":"CREATE_TIME","key":"a2V5","value":"dmFsdWU=",
                             "headers":[{"h":[104,-61,-85]}]}]}}

MSK adds ``"eventSourceArn"`` and says ``"aws:kafka"``. ``key`` is absent for a null key, ``value`` is
``null`` for a tombstone, header values are arrays of Java's signed bytes. Each record's JSON size
is computed by arithmetic when it is polled (``Record.size``), so a batch's exact size is known
before it is built. HTTP functions get the JSON (each record encoded once, the batch a join); Python
handlers get the batch packed (``pack_records``) and their worker process builds the dict
(``unpack_event``) that ``json.loads`` of that JSON would give.
"""

from __future__ import annotations

import json
import pickle
import struct
from array import array
from base64 import b64encode
from binascii import b2a_base64
from collections.abc import Iterable, Sequence
from typing import Any

# confluent_kafka.TIMESTAMP_CREATE_TIME / TIMESTAMP_LOG_APPEND_TIME (librdkafka's fixed values), spelled
# out so a handler's worker process can use ``unpack_event`` without importing confluent_kafka (~0.1 s).
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
            r.size = json_size(r)
        else:
            # json_size inlined for the common case (no headers): saves a call and the prefix lookup per record
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
            self.encoded = encode_record(self)
        return self.encoded

    def json_size(self) -> int:
        """``len(self.encode())``, computed without encoding (cached)."""
        if not self.size:
            self.size = len(self.encoded) if self.encoded else json_size(self)
        return self.size

    def __repr__(self) -> str:
        return f"Record({self.topic}-{self.partition}@{self.offset})"


_new = object.__new__


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


def json_size(r: Record) -> int:
    """Exact size of ``encode_record(r)`` by arithmetic: the batcher needs sizes, not bytes."""
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


def encode_record(r: Record) -> bytes:
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


def pack_records(envelope: dict[str, Any], records: Sequence[Record]) -> bytes:
    """A batch as one compact blob for a worker process (see ``unpack_event``).

    A 4-byte length, the pickled columns (envelope, partition runs, offsets, timestamps, timestamp
    types, key and value lengths with -1 for null, headers of the records that have any), then every
    key and every value raw: column lists built in C instead of a tuple per record, and the 1 KB
    payloads copied once instead of through pickle's buffer on both sides of the pipe.
    """
    first = records[0]
    t0, p0 = first.topic, first.partition
    if all(r.partition == p0 and r.topic == t0 for r in records):
        runs: list[tuple[str, int, int]] = [(t0, p0, len(records))]
    else:
        runs = []
        for r in records:
            if runs and runs[-1][0] == r.topic and runs[-1][1] == r.partition:
                t, p, n = runs[-1]
                runs[-1] = (t, p, n + 1)
            else:
                runs.append((r.topic, r.partition, 1))
    keys = [r.key for r in records]
    values = [r.value for r in records]
    types = [r.timestamp_type for r in records]
    columns = (
        envelope, runs,
        [r.offset for r in records], [r.timestamp for r in records],
        types[0] if types.count(types[0]) == len(types) else types,
        [-1 if k is None else len(k) for k in keys],
        [-1 if v is None else len(v) for v in values],
        {i: list(r.headers) for i, r in enumerate(records) if r.headers},
    )
    meta = pickle.dumps(columns, protocol=pickle.HIGHEST_PROTOCOL)
    # The keys and values go in raw after the pickled columns: one copy, none through pickle's buffer.
    return b"".join([_META_LEN.pack(len(meta)), meta, *[k for k in keys if k], *[v for v in values if v]])


_META_LEN = struct.Struct(">I")


def unpack_event(blob: bytes) -> dict[str, Any]:
    """The event dict from ``pack_records``: exactly what ``json.loads(EventBuilder.build(...))`` gives,
    built directly (in the worker process, so the engine never encodes JSON for Python handlers)."""
    view = memoryview(blob)
    (meta_len,) = _META_LEN.unpack_from(view)
    start = _META_LEN.size + meta_len
    envelope, runs, offsets, timestamps, types, key_lens, value_lens, headers = pickle.loads(view[_META_LEN.size:start])
    b64 = b2a_base64
    kview = view[start:]
    vview = kview[sum(n for n in key_lens if n > 0):]
    kpos = vpos = i = 0
    groups: dict[str, list[dict[str, Any]]] = {}
    same_type = isinstance(types, str)
    ts_type = types
    for topic, partition, count in runs:
        group = groups.get(f"{topic}-{partition}")
        if group is None:
            group = groups[f"{topic}-{partition}"] = []
        append = group.append
        for j in range(i, i + count):
            if not same_type:
                ts_type = types[j]
            vlen = value_lens[j]
            if vlen < 0:
                value = None
            else:
                value = b64(vview[vpos:vpos + vlen], newline=False).decode("ascii")
                vpos += vlen
            klen = key_lens[j]
            if klen < 0:
                record = {"topic": topic, "partition": partition, "offset": offsets[j], "timestamp": timestamps[j],
                          "timestampType": ts_type, "value": value, "headers": []}
            else:
                record = {"topic": topic, "partition": partition, "offset": offsets[j], "timestamp": timestamps[j],
                          "timestampType": ts_type, "key": b64(kview[kpos:kpos + klen], newline=False).decode("ascii"),
                          "value": value, "headers": []}
                kpos += klen
            if headers and j in headers:
                record["headers"] = [{name: array("b", v).tolist() if v else []} for name, v in headers[j]]
            append(record)
        i += count
    event = dict(envelope)
    event["records"] = groups
    return event
