"""Produce bodies: the fast ways (orjson, ``PlainRecords``) give exactly the records and errors of the stdlib,
record-by-record way; and through a real bridge, each record's answer is its own."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from triggerfish.bridge import body_json
from triggerfish.bridge.config import from_properties
from triggerfish.bridge.errors import validation
from triggerfish.bridge.formats import Format, dumps
from triggerfish.bridge.produce_body import PlainRecords, _encode, parse_records, records_of
from triggerfish.bridge.server import prepare
from triggerfish.bridge.validation import type_of
from triggerfish.errors import TriggerfishError
from triggerfish.json_input import loads
from triggerfish.localkafka import KafkaEnv

JSON = "application/vnd.kafka.json.v2+json"


def _stdlib_way(body: bytes, fmt: Format, to_partition: bool) -> list[tuple[Any, ...]]:
    """The records as the bridge made them before orjson and ``PlainRecords``: stdlib parse, one record at a time."""
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        doc = loads(body, parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation([f"Request body is not valid JSON: {exc}"]) from None
    if not isinstance(doc, dict):
        raise validation([f"Instance type {type_of(doc)} is invalid. Expected object"])
    extra = [k for k in doc if k != "records"]
    if extra:
        raise validation([f'Property "{extra[0]}" does not match additional properties schema'])
    return _tuples(records_of(doc, lambda obj, what, i: _encode(obj, fmt, what), to_partition))


def _tuples(records: Any) -> list[tuple[Any, ...]]:
    return [(r.value, r.key, r.partition, r.timestamp, r.headers) for r in records]


def _outcome(fn: Callable[[], list[tuple[Any, ...]]]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a lone surrogate fails to encode (a 500) either way
        return type(exc).__name__, str(exc), getattr(exc, "errors", None)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


BODIES: list[str] = [
    '{"records":[{"value":{"id":1,"data":"x"}},{"value":"s","key":"k"},{"value":null},{"value":[1,2,{"a":null}]}]}',
    '{"records":[{"value":{"f":1e16,"g":1e-05,"h":0.1,"i":-0.0,"j":1E5}}]}',  # floats: the stdlib writes them
    '{"records":[{"value":{"big":123456789012345678901234567890,"neg":-9223372036854775809}}]}',
    '{"records":[{"value":{"u64":18446744073709551615,"i64":-9223372036854775808}}]}',
    '{"records":[{"value":{"a":1,"b":2,"a":3}}]}',  # a repeated key keeps the last value in the first place
    '{"records":[{"value":"\\ud800"}]}',  # a lone surrogate
    '{"records":[{"value":"\\u00e9\\u2028\\u0000\\u001f\\u007f\\"\\\\\\/ \\ud83d\\ude00"}]}',
    '\ufeff{"records":[{"value":"bom"}]}',
    '{"records":[{"value":NaN}]}',
    '{"records":[{"value":Infinity}]}',
    '{"records":[{"value":1e400}]}',
    '{"records":[{"value":"x"},]}',
    '{"records":[{"value":' + nested(300) + "}]}",  # deeper than orjson writes, not than MAX_DEPTH
    '{"records":[{"value":' + nested(600) + "}]}",  # deeper than MAX_DEPTH
    '{"records":[{"value":' + nested(1100) + "}]}",  # deeper than orjson reads
    '{"records":[' + ",".join(['{"value":[{"k":"v"}]}'] * 400) + "]}",  # many brackets, shallow
    '{"records":[{"value":"v","key":' + nested(300) + "}]}",
    '{"records":[{"value":5}]}',
    '{"records":[{"value":"v","key":null}]}',
    '{"records":[{"value":"v","key":7}]}',
    '{"records":[{"value":"v","partition":1,"timestamp":5,"headers":[{"key":"h","value":"aGk="}]}]}',
    '{"records":[{"value":"v","partition":1.0}]}',
    '{"records":[{"value":"a"},{"value":"v","extra":1},{"key":"k"}]}',
    '{"records":[{"value":"v","key":"k"},{"value":"w","headers":[]}]}',
    '{"records":{}}',
    '{"records":[]}',
    '{}',
    '[]',
    '{"records":[],"x":1}',
    'nope',
]


@pytest.mark.parametrize("fmt", [Format.JSON, Format.TEXT, Format.BINARY])
@pytest.mark.parametrize("to_partition", [False, True])
@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_records_and_errors_are_the_stdlib_ways(body: str, fmt: Format, to_partition: bool) -> None:
    raw = body.encode("utf-8", "surrogatepass")
    assert _outcome(lambda: _tuples(parse_records(raw, fmt, to_partition))) == \
        _outcome(lambda: _stdlib_way(raw, fmt, to_partition))


def test_text_and_binary_refuse_the_first_bad_value_or_key_in_record_order() -> None:
    body = b'{"records":[{"value":"aGk=","key":"!"},{"value":"!!","key":"aGk="}]}'
    for fmt in (Format.BINARY, Format.TEXT):
        assert _outcome(lambda f=fmt: _tuples(parse_records(body, f))) == _outcome(lambda f=fmt: _stdlib_way(body, f, False))
    with pytest.raises(TriggerfishError, match="the key must be base64 encoded"):
        parse_records(body, Format.BINARY)


def test_plain_records_are_kept_as_two_lists() -> None:
    records = parse_records(b'{"records":[{"value":{"a":1}},{"value":"v","key":[1]}]}', Format.JSON)
    assert isinstance(records, PlainRecords)
    assert records.values == [b'{"a":1}', b'"v"'] and records.keys == [None, b"[1]"]
    assert (records[1].value, records[1].key) == (b'"v"', b"[1]") and len(records[0:1]) == 1
    # a record with a partition of its own is an OutRecord
    assert not isinstance(parse_records(b'{"records":[{"value":"v","partition":0}]}', Format.JSON), PlainRecords)


def test_orjson_reads_only_what_the_stdlib_reads_alike() -> None:
    assert body_json.read(b'{"a":[1,"x"]}') == ({"a": [1, "x"]}, True)
    assert body_json.read(b'{"a":1.5}') == ({"a": 1.5}, False)  # read alike, written otherwise
    assert body_json.read(b'{"a":"v1e"}') == ({"a": "v1e"}, False)  # looks like a float: written the stdlib's way
    for refused in (b'{"a":1234567890123456789}', b'{"a":NaN}', b'"\\ud800"', b"\xef\xbb\xbf{}", b"[1,]"):
        assert body_json.read(refused) is None, refused
    # a shallow document with more brackets than MAX_DEPTH is read; one nested deeper than orjson writes is not
    assert body_json.read(b"[" + b",".join([b"[]"] * 600) + b"]") is not None
    assert body_json.read(nested(300).encode()) is not None and body_json.read(nested(520).encode()) is None
    value = {"s": "\u00e9\x00\x1f\x7f\"\\/\U0001f600", "n": [1, -2, True, False, None], "o": {}}
    assert body_json.write(value) == dumps(value) == dumps(json.loads(json.dumps(value)))


# ---------------------------------------------------------------- through a bridge, per record answers

class _Bridge:
    def __init__(self, props: dict[str, str]) -> None:
        self.prepared = prepare(from_properties({"http.port": "0", "http.management.port": "0", **props}, environ={}))
        self.thread = self.prepared.start_in_thread()
        (h, p), (_, mp) = self.prepared.addresses
        self.http = httpx.Client(base_url=f"http://{h}:{p}", timeout=30)
        self.management = f"http://{h}:{mp}"

    def close(self) -> None:
        self.http.close()
        self.prepared.stop(self.thread)


@pytest.fixture(scope="module")
def bridge(kafka: KafkaEnv) -> Iterator[_Bridge]:
    b = _Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "kafka.producer.max.request.size": "4000"})
    yield b
    b.close()


def _read_back(kafka: KafkaEnv, topic: str, partitions: int, want: int) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"{topic}-check", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found: dict[tuple[int, int], tuple[bytes, bytes]] = {}
    try:
        for _ in range(100):
            for m in consumer.consume(100, 0.5):
                assert m.error() is None
                found[(m.partition(), m.offset())] = (m.key(), m.value())
            if len(found) >= want:
                break
    finally:
        consumer.close()
    return found


@pytest.mark.kafka
def test_each_record_answers_with_its_own_partition_and_offset(bridge: _Bridge, kafka: KafkaEnv,
                                                              make_topic: Callable[..., str]) -> None:
    topic = make_topic(partitions=3)
    records = [{"key": f"k{i % 7}", "value": {"n": i}} for i in range(60)]
    r = bridge.http.post(f"/topics/{topic}", json={"records": records}, headers={"content-type": JSON})
    assert r.status_code == 200, r.text
    offsets = r.json()["offsets"]
    assert len(offsets) == 60 and len({o["partition"] for o in offsets}) > 1
    found = _read_back(kafka, topic, 3, 60)
    for i, o in enumerate(offsets):
        assert found[(o["partition"], o["offset"])] == (f'"k{i % 7}"'.encode(), f'{{"n":{i}}}'.encode()), i


@pytest.mark.kafka
def test_a_record_kafka_refuses_is_answered_alone_and_counted(bridge: _Bridge, kafka: KafkaEnv,
                                                              make_topic: Callable[..., str]) -> None:
    topic = make_topic(partitions=1)
    records = [{"value": "a"}, {"value": "x" * 5000}, {"value": "b"}]
    r = bridge.http.post(f"/topics/{topic}", json={"records": records}, headers={"content-type": JSON})
    assert r.status_code == 200, r.text
    first, big, last = r.json()["offsets"]
    assert (first, last) == ({"partition": 0, "offset": 0}, {"partition": 0, "offset": 1})
    assert big["error_code"] in (400, 413, 422, 500) and "too large" in big["message"].lower(), big
    metrics = httpx.get(f"{bridge.management}/metrics").text
    lines = [line for line in metrics.splitlines() if f'topic="{topic}"' in line]
    sent = [line for line in lines if "record_send_total" in line]
    errors = [line for line in lines if "record_error_total" in line]
    assert sent and all(line.endswith(" 2.0") for line in sent), lines
    assert errors and all(line.endswith(" 1.0") for line in errors), lines
