"""A poll's JSON answer with orjson is today's stdlib answer: the values orjson reads differently
(NaN, Infinity, integers beyond 64 bits, nesting deeper than 512, UTF-16, a BOM, bytes that are not
UTF-8, lone surrogates) give the same body or the same error, byte for byte."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Message, Producer

from triggerfish.bridge.config import from_properties
from triggerfish.bridge.consumed_json import poll_body, stdlib_body
from triggerfish.bridge.formats import Format, record_json, records_json
from triggerfish.bridge.server import prepare
from triggerfish.errors import NotAcceptableError
from triggerfish.json_input import loads
from triggerfish.localkafka import KafkaEnv

HEADERS = [("h", b"\x00\x01"), ("empty", None)]
MESSAGE_HEADERS: list[tuple[str, str | bytes | None]] = list(HEADERS)


def before(values: Sequence[bytes | None]) -> bytes | str:
    """The stdlib path as it was: json_input.loads of each value, json.dumps of the body (or the error)."""
    out: list[dict[str, Any]] = []
    for i, v in enumerate(values):
        try:
            value = None if v is None else loads(v)
        except (ValueError, UnicodeDecodeError) as exc:
            return f"406 Failed to decode: {exc}"
        out.append({"topic": "t", "key": None, "value": value, "partition": 0, "offset": i, "timestamp": 5,
                    "headers": [{"key": "h", "value": "AAE="}, {"key": "empty", "value": None}]})
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()


def after(values: Sequence[bytes | None]) -> bytes | str:
    try:
        out = [record_json(Format.JSON, "t", None, v, 0, i, 5, HEADERS) for i, v in enumerate(values)]
    except NotAcceptableError as exc:
        return f"406 {exc}"
    return poll_body(out)


def after_poll(values: Sequence[bytes | None], fmt: Format = Format.JSON) -> bytes | str:
    """The poll-level path (``records_json``); when it refuses, the bridge answers with ``record_json``'s error."""
    msgs = [Message(topic="t", partition=0, offset=i, key=None, value=v, headers=MESSAGE_HEADERS, timestamp=(1, 5))
            for i, v in enumerate(values)]
    try:
        return poll_body(records_json(fmt, msgs))
    except NotAcceptableError:
        return after(values)


def nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[]" + b"}" * (depth - 1)


FALLBACKS = {
    "NaN": b'{"x":NaN}',
    "Infinity": b"[Infinity,-Infinity]",
    "a float beyond double": b'{"x":1e400,"y":-1e400}',
    "2**64": b'{"n":18446744073709551616}',
    "below -2**63": b"[-9223372036854775809]",
    "a 40-digit integer": b"1234567890123456789012345678901234567890",
    "19 digits in a string": b'{"id":"1234567890123456789"}',
    "512 deep": nested(512),
    "513 deep": nested(513),
    "1100 deep": b"[" * 1100 + b"]" * 1100,
    "100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "many brackets, shallow": b"[" + b",".join([b"[]"] * 600) + b"]",
    "not UTF-8": b'"caf\xe9"',
    "UTF-16": '{"caf\u00e9":[1,2]}'.encode("utf-16"),
    "UTF-16-LE without BOM": '{"x":"\u00e9"}'.encode("utf-16-le"),
    "UTF-8 BOM": b'\xef\xbb\xbf{"a":1}',
    "not JSON": b"{'a': 1}",
    "empty": b"",
    "trailing data": b"[1] [2]",
}

SAME_TEXT = {
    "object": b'{"id":7,"name":"caf\xc3\xa9","tags":["a","b"],"ok":true,"none":null}',
    "repeated key": b'{"a":1,"b":2,"a":3}',
    "64-bit integers": b"[18446744073709551615,-9223372036854775808,9223372036854775807]",
    "escapes": b'"tab\\t nul\\u0000 quote\\" \\u00e9 \\ud83d\\ude00 del\x7f"',
    "control characters": b'["\\b\\f\\n\\r\\u001f\\u0001", "\\u2028\\u2029", "\\/", "\xe2\x80\xa8 \xf0\x9f\x98\x80"]',
    "whitespace": b' \n [ 1 , { } ] \t',
    "scalars": b'"just a string"',
}


@pytest.mark.parametrize("value", FALLBACKS.values(), ids=FALLBACKS.keys())
def test_values_orjson_reads_differently_answer_as_before(value: bytes) -> None:
    values = [b'{"before":1}', value, None, b'{"after":2}']
    assert after(values) == before(values)
    assert after_poll(values) == before(values)
    assert after_poll([value, *[b'{"n":[1,2,3]}'] * 300]) == before([value, *[b'{"n":[1,2,3]}'] * 300])


@pytest.mark.parametrize("value", SAME_TEXT.values(), ids=SAME_TEXT.keys())
def test_values_orjson_reads_give_the_same_bytes(value: bytes) -> None:
    assert after([value]) == before([value])
    assert after_poll([value, None, value]) == before([value, None, value])


def test_a_poll_answers_the_first_refused_value_as_one_by_one() -> None:
    values = [b"[1]", b"{'a': 1}", b"[2", b"NaN"]
    assert after_poll(values) == before(values) == "406 Failed to decode: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"


def test_floats_are_the_same_numbers_in_orjsons_shortest_form() -> None:
    values = [b"[0.1,1e-05,1e16,-0.0,1E2,3.141592653589793,1.7976931348623157e308,5e-324]"]
    new, old = after(values), before(values)
    assert isinstance(new, bytes) and isinstance(old, bytes)
    assert new != old  # 1e-05 is written 0.00001
    assert json.loads(new) == json.loads(old)
    assert [repr(x) for x in json.loads(new)[0]["value"]] == [repr(x) for x in json.loads(old)[0]["value"]]


def test_a_lone_surrogate_fails_the_body_writer_as_before() -> None:
    """Both an error no handler answers: the same 500 (not a 406, which would change the answer)."""
    with pytest.raises(UnicodeEncodeError):
        before([b'"\\ud800"'])
    with pytest.raises(orjson.JSONEncodeError):
        after([b'"\\ud800"'])


def test_registry_formats_keep_the_stdlib_writer() -> None:
    records = [{"value": {"d": float("nan"), "n": 2**70}}]
    assert stdlib_body(records) == b'[{"value":{"d":NaN,"n":1180591620717411303424}}]'


@pytest.mark.parametrize("fmt", [Format.BINARY, Format.TEXT])
def test_binary_and_text_bodies_are_unchanged(fmt: Format) -> None:
    values = [b"caf\xc3\xa9", b"\xff\xfe bytes", b"", None]
    out = [record_json(fmt, "t", b"k", v, 1, i, 5, HEADERS) for i, v in enumerate(values)]

    def show(data: bytes | None) -> str | None:
        if data is None:
            return None
        return base64.b64encode(data).decode() if fmt is Format.BINARY else data.decode("utf-8", errors="replace")

    expected = [{"topic": "t", "key": show(b"k"), "value": show(v), "partition": 1, "offset": i, "timestamp": 5,
                 "headers": [{"key": "h", "value": "AAE="}, {"key": "empty", "value": None}]}
                for i, v in enumerate(values)]
    assert poll_body(out) == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()
    msgs = [Message(topic="t", partition=1, offset=i, key=b"k", value=v, headers=MESSAGE_HEADERS, timestamp=(1, 5))
            for i, v in enumerate(values)]
    assert poll_body(records_json(fmt, msgs)) == poll_body(out)


@pytest.mark.kafka
def test_a_poll_through_the_bridge_answers_fallback_values_as_before(kafka: KafkaEnv, make_topic: Callable[..., str],
                                                                     unique_name: Callable[[str], str]) -> None:
    topic = make_topic()
    values = [b'{"n":18446744073709551616}', b'{"x":NaN}', '["\u00e9"]'.encode("utf-16"), b'{"a":1,"a":2}', b"[0.5]"]
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    for v in values:
        producer.produce(topic, v, partition=0)
    assert producer.flush(30) == 0
    prepared = prepare(from_properties({"http.port": "0", "http.management.port": "0",
                                        "kafka.bootstrap.servers": kafka.bootstrap,
                                        "kafka.consumer.auto.offset.reset": "earliest"}, environ={}))
    thread = prepared.start_in_thread()
    (host, port), _ = prepared.addresses
    try:
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as http:
            group, v2 = unique_name("g"), {"content-type": "application/vnd.kafka.v2+json"}
            assert http.post(f"/consumers/{group}", json={"name": "c", "format": "json"}, headers=v2).status_code == 200
            instance = f"/consumers/{group}/instances/c"
            assert http.post(instance + "/subscription", json={"topics": [topic]}, headers=v2).status_code == 204
            got: list[Any] = []
            raw = b""
            for _ in range(20):
                r = http.get(instance + "/records", params={"timeout": 1000},
                             headers={"accept": "application/vnd.kafka.json.v2+json"})
                assert r.status_code == 200, r.text
                got += r.json()
                raw += r.content
                if len(got) == len(values):
                    break
            assert [g["value"] for g in got] == [{"n": 2**64}, {"x": pytest.approx(float("nan"), nan_ok=True)},
                                                 ["\u00e9"], {"a": 2}, [0.5]]
            assert b'"n":18446744073709551616' in raw and b'{"x":NaN}' in raw
            http.delete(instance)
    finally:
        prepared.stop(thread)
