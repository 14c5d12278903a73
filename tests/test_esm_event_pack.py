"""The packed batch a Python handler's worker turns into the event equals Lambda's JSON event, parsed."""

from __future__ import annotations

import json

from triggerfish.esm import block
from triggerfish.esm.block import Block, flat
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.functions.batch import pack_records, unpack_event


def _records() -> list[Record]:
    return [
        Record("orders", 0, 7, 1545084650987, "CREATE_TIME", b"key", b"value", [("h", b"\x68\xc3\xab"), ("n", None)]),
        Record("orders", 0, 8, 1545084650988, "CREATE_TIME", None, b"\x00\xff binary"),
        Record("orders", 0, 9, 1545084650989, "LOG_APPEND_TIME", b"k", None),
        Record("orders", 0, 10, 1545084650990, "CREATE_TIME", b"", b""),
        Record("orders", 3, 2, 1545084650991, "CREATE_TIME", None, None, [("e", b"")]),
        Record("other", 1, 0, 1545084650992, "CREATE_TIME", b"\xfe", b"x" * 1024),
        Record("orders", 0, 11, 1545084650993, "CREATE_TIME", b"late", b"same partition, later run"),
    ]


def test_unpacked_event_equals_parsed_lambda_json() -> None:
    builder = EventBuilder("SelfManagedKafka", ["h1:9092", "h2:9092"])
    records = _records()
    event = unpack_event(pack_records(builder.envelope, records))
    assert event == json.loads(builder.build(records))
    # key order too: handlers that re-serialise the event get Lambda's bytes back
    assert json.dumps(event, separators=(",", ":")).encode() == builder.build(records)


def test_msk_envelope_and_single_partition_batch() -> None:
    builder = EventBuilder("aws:kafka", ["b-1:9098"], "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc")
    records = [Record("t", 2, i, 1000 + i, "CREATE_TIME", None, f"v{i}".encode()) for i in range(1000)]
    event = unpack_event(pack_records(builder.envelope, records))
    assert json.dumps(event, separators=(",", ":")).encode() == builder.build(records)
    assert [r["offset"] for r in event["records"]["t-2"]] == list(range(1000))


def test_single_partition_batches_of_every_key_and_value_shape_are_lambdas_bytes() -> None:
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    shapes = {
        "every key": lambda i: (str(i).encode(), b"v" * i),
        "no key": lambda i: (None, b"\xff" * i),
        "mixed keys": lambda i: (None if i % 3 else b"k", b"v"),
        "tombstones": lambda i: (b"k" * i, None if i % 2 else b""),
        "nothing": lambda i: (None, None),
    }
    for name, shape in shapes.items():
        for count in (1, 2, 50):
            records = [Record("t", 5, 90 + i, 1000 + i, "LOG_APPEND_TIME", *shape(i)) for i in range(count)]
            event = unpack_event(pack_records(builder.envelope, records))
            assert json.dumps(event, separators=(",", ":")).encode() == builder.build(records), (name, count)
            records_out = event["records"]["t-5"]
            assert len({id(r["headers"]) for r in records_out}) == count  # a list of its own per record, as json.loads


def test_timestamp_type_codes_are_librdkafkas() -> None:
    from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

    from triggerfish.esm.event import _TIMESTAMP_TYPES

    assert _TIMESTAMP_TYPES == {TIMESTAMP_CREATE_TIME: "CREATE_TIME", TIMESTAMP_LOG_APPEND_TIME: "LOG_APPEND_TIME"}


class _Msg:
    """The accessors of a confluent_kafka.Message (which cannot be built without a broker)."""

    def __init__(self, topic: str, partition: int, offset: int, ts: tuple[int, int], key: bytes | None,
                 value: bytes | None, headers: list[tuple[str, bytes | None]] | None) -> None:
        self._t = (topic, partition, offset, ts, key, value, headers)

    def topic(self) -> str: return self._t[0]  # noqa: E704
    def partition(self) -> int: return self._t[1]  # noqa: E704
    def offset(self) -> int: return self._t[2]  # noqa: E704
    def timestamp(self) -> tuple[int, int]: return self._t[3]  # noqa: E704
    def key(self) -> bytes | None: return self._t[4]  # noqa: E704
    def value(self) -> bytes | None: return self._t[5]  # noqa: E704
    def headers(self) -> list[tuple[str, bytes | None]] | None: return self._t[6]  # noqa: E704
    def error(self) -> None: return None  # noqa: E704


def test_size_computed_when_polled_equals_the_encoded_json() -> None:
    cases = [
        _Msg("orders", 0, 0, (1, 1545084650987), b"k", b"v" * 1024, None),
        _Msg("orders", 12, 123456789, (2, 1), None, b"\x00", None),
        _Msg("ü-topic", 3, 9, (0, -1), b"", None, None),
        _Msg("orders", 0, 99, (1, 5), None, None, None),
        _Msg("orders", 0, 98, (1, 5), b"tombstone-key", None, None),
        _Msg("orders", 0, 97, (1, 5), b"k" * 7, b"", None),
        _Msg("orders", 0, 100, (1, 5), b"ab", b"abcd", [("h", b"\x68\xc3\xab"), ("n", None)]),
    ]
    for msg in cases * 2:  # the second round uses the cached prefix sizes
        r = Record.from_message(msg)
        assert r.json_size() == len(r.encode()), msg._t


def test_a_poll_built_column_wise_is_the_same_records_as_one_by_one() -> None:
    from triggerfish.esm.consumer import records_of

    polls = [
        # one partition, digits of offsets and timestamps alike: the constant parts added once
        [_Msg("orders", 0, 100 + i, (1, 1545084650987 + i), str(i).encode(), b"v" * (1000 + i), None) for i in range(50)],
        # several partitions, offsets and timestamps crossing a digit, null keys and values mixed, both types
        [_Msg("orders", i % 3, 95 + i, (1 + i % 2, 990 + 3 * i), None if i % 4 else b"k" * i,
              None if i % 5 == 0 else b"\x00" * i, None) for i in range(20)],
        [_Msg("orders", 1, 7, (0, -1), None, None, None), _Msg("orders", 1, 8, (1, 12), None, None, None)],
        [_Msg("orders", 2, 1, (1, 5), b"", b"", None)],
        # every key null; keys of 1 and 2 bytes (one base64 length); partitions 9 and 10 (prefixes of two lengths)
        [_Msg("orders", 9 + i % 2, 5, (1, 5), None, b"v", None) for i in range(6)],
        [_Msg("orders", 4, i, (1, 5), str(i * 7).encode(), b"v" * (i % 2), None) for i in range(8)],
        [_Msg("orders", 4, i, (1, 5), b"k" * (i % 5), None, None) for i in range(8)],
        # headers or two topics: record by record
        [_Msg("orders", 0, 1, (1, 5), b"a", b"b", None), _Msg("orders", 0, 2, (1, 5), b"a", b"b", [("h", b"x")])],
        [_Msg("orders", 0, 1, (1, 5), b"a", b"b", None), _Msg("other", 0, 2, (1, 5), None, b"b", None)],
    ]
    for i, messages in enumerate(polls):
        polled, filtered = records_of(messages, None, lambda err: None)
        # a block per partition run, except with headers or two topics
        assert all(isinstance(b, Block) for b in polled) == (i < len(polls) - 2)
        records = flat(polled)
        expected = [Record.from_message(m) for m in messages]
        assert filtered == 0 and [tuple(r) for r in records] == [tuple(r) for r in expected]
        assert all(type(r) is Record and r.json_size() == len(r.encode()) for r in records)
        for b in polled:
            if isinstance(b, Block):  # its columns say what its records do
                assert b.size == sum(r.json_size() for r in b)
                assert [b[j] for j in range(-len(b), len(b))] == [*b.records(), *b.records()]
                assert list(b[1:3]) == b.records()[1:3] and block.last_offset(b) == b.records()[-1].offset


def test_batches_are_the_largest_prefix_within_count_and_payload_limit() -> None:
    import random

    from triggerfish.esm.batcher import PartitionBuffer

    rng = random.Random(7)
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    max_bytes = 20_000
    records = [Record("t", 0, i, 1000 + i, "CREATE_TIME", b"k", b"v" * rng.choice([10, 900, 3000, 16_000, 25_000]))
               for i in range(300)]
    buf = PartitionBuffer(7, 1.0, builder.envelope_size("t", 0), max_bytes)
    for r in records:
        buf.add(r, 0.0)
    taken: list[Record] = []
    while len(buf):
        cut = buf.take(0.0)
        if cut.oversized:
            assert len(cut.records) == 1 and builder.size(cut.records) > max_bytes
        else:
            assert 1 <= len(cut.records) <= 7 and builder.size(cut.records) <= max_bytes
            following = records[len(taken) + len(cut.records):][:1]
            if len(cut.records) < 7 and following:  # stopped early only because the next one did not fit
                assert builder.size([*cut.records, *following]) > max_bytes
        taken += cut.records
        assert buf.bytes == sum(r.json_size() for r in buf.records)
    assert taken == records
