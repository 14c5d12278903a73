"""``unpack_event``'s column-wise paths give Lambda's event byte for byte: keys split by a struct format
(and its fallback for keys of 256 bytes or more), repeated keys encoded once and shared, mostly unique
keys encoded one by one, null keys mixed in, several runs of one partition, per-record timestamp types,
headers and schema metadata found by their index in the batch."""

from __future__ import annotations

import json
from typing import Any

from triggerfish.esm.event import EventBuilder, Record, SchemaRecord
from triggerfish.functions.batch import pack_records, unpack_event

_BUILDER = EventBuilder("SelfManagedKafka", ["h1:9092", "h2:9092"])


def _assert_lambdas(records: list[Any]) -> dict[str, Any]:
    event = unpack_event(pack_records(_BUILDER.envelope, records))
    built = _BUILDER.build(records)
    assert event == json.loads(built)
    assert json.dumps(event, separators=(",", ":")).encode() == built
    return event


def test_repeated_keys_are_encoded_once_and_shared() -> None:
    records = [Record("t", 0, i, 1000 + i, "CREATE_TIME", f"user-{i % 7}".encode(), bytes([i % 256]) * (1000 + i % 5))
               for i in range(300)]
    event = _assert_lambdas(records)
    keys = [r["key"] for r in event["records"]["t-0"]]
    assert len({id(k) for k in keys}) == 7  # one string per distinct key
    assert len({id(r) for r in event["records"]["t-0"]}) == 300


def test_mostly_unique_keys_and_keys_of_every_length_up_past_the_format_table() -> None:
    # unique short keys (binascii), unique long ones (pybase64), lengths past the format table, empty keys
    for lengths in ([12] * 50, range(1, 80), range(0, 300), [256] * 10, [0] * 10, [255, 256, 1, 4096]):
        records = [Record("t", 1, i, 5, "CREATE_TIME", bytes([i % 251]) * n, b"x") for i, n in enumerate(lengths)]
        _assert_lambdas(records)


def test_null_keys_mixed_with_repeated_and_empty_keys() -> None:
    keys = [None, b"", b"a", None, b"a", b"\xff\x00", None, b""]
    records = [Record("t", 2, i, 7, "CREATE_TIME", keys[i % len(keys)], None if i % 3 == 0 else b"v") for i in range(40)]
    event = _assert_lambdas(records)
    assert ["key" in r for r in event["records"]["t-2"]][:4] == [False, True, True, False]
    all_null = [Record("t", 2, i, 7, "CREATE_TIME", None, b"v") for i in range(10)]
    assert all("key" not in r for r in _assert_lambdas(all_null)["records"]["t-2"])


def test_runs_of_partitions_with_per_record_types_headers_and_metadata_by_batch_index() -> None:
    records: list[Any] = []
    for i in range(60):
        topic, partition = ("a", i // 10 % 3) if i < 50 else ("b", 0)
        headers = [("n", str(i).encode()), ("z", None)] if i % 7 == 0 else ()
        records.append(Record(topic, partition, i, 100 + i, "LOG_APPEND_TIME" if i % 4 == 0 else "CREATE_TIME",
                              str(i % 3).encode() if i % 5 else None, bytes(range(i % 9)), headers))
    event = _assert_lambdas(records)
    assert [r["offset"] for r in event["records"]["a-0"]] == [*range(0, 10), *range(30, 40)]
    # schema metadata on records of a partition's second run
    metadata = {"valueSchemaMetadata": {"dataFormat": "AVRO", "schemaId": "7"}}
    schema_records = [SchemaRecord(r, r.key, r.value, metadata if r.offset in (3, 33, 51) else {}) for r in records]
    event = unpack_event(pack_records(_BUILDER.envelope, schema_records))
    assert event == json.loads(_BUILDER.build(schema_records))
    assert [r["offset"] for r in event["records"]["a-0"] if "valueSchemaMetadata" in r] == [3, 33]


def test_a_batch_of_one_record_takes_its_own_path_to_the_same_event() -> None:
    # (BatchSize 1: built directly) null, empty, short and long keys and values, both timestamp types
    for key in (None, b"", b"k", b"k" * 64, b"k" * 65, bytes(range(256)) * 3):
        for value in (None, b"", b"v", bytes(range(256)) * 4 + b"x"):
            for ts_type in ("CREATE_TIME", "LOG_APPEND_TIME"):
                event = _assert_lambdas([Record("orders", 7, 12345, 1_700_000_000_123, ts_type, key, value)])
                (record,) = event["records"]["orders-7"]
                assert list(record) == [name for name in ("topic", "partition", "offset", "timestamp", "timestampType",
                                                          "key", "value", "headers") if name != "key" or key is not None]
    # with headers or schema metadata: the general path, the same event
    _assert_lambdas([Record("orders", 7, 1, 5, "CREATE_TIME", b"k", b"v", [("h", b"x")])])


def test_columns_of_ints_cross_compactly_and_come_back_the_same() -> None:
    # one length throughout (a number and a count), varied timestamps with -1 among them and offsets past 2**32
    # with gaps (machine arrays), null values among them or every one: the same event, and no int pickled one by one
    offsets = [2**33 + 2 * i for i in range(1000)]
    records = [Record("t", 3, off, -1 if i % 10 == 0 else 1_700_000_000_000 + i * 37, "CREATE_TIME", b"k" * 16,
                      None if i % 2 else b"v" * 1024) for i, off in enumerate(offsets)]
    _assert_lambdas(records)
    same = [Record("t", 3, i, 9, "CREATE_TIME", None, b"v" * 1024) for i in range(1000)]
    blob = pack_records(_BUILDER.envelope, same)
    meta_len = int.from_bytes(blob[:4], "big")
    # the offsets 8 bytes each (a machine array); timestamps and both lengths a number and a count
    assert meta_len < 8 * 1000 + 400
    _assert_lambdas(same)
    tombstones = [Record("t", 3, i, 9, "CREATE_TIME", b"k", None) for i in range(50)]  # (-1, 50): every value null
    assert all(r["value"] is None for r in _assert_lambdas(tombstones)["records"]["t-3"])
