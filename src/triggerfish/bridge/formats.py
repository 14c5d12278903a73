"""The embedded formats (json, binary, text): request bodies to Kafka records and Kafka records to JSON.

Protocol only: no Kafka client here. Request bodies are checked against the shapes of Strimzi's
OpenAPI schemas (``ProducerRecordList``, ``Consumer``, ``Topics``, ...) by hand, because a generic
schema validator costs more than the rest of a produce request; failures are 400 with Strimzi's
``validation_errors`` strings.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pybase64

from triggerfish.bridge import body_json
from triggerfish.bridge.consumed_json import parse_value, parse_values
from triggerfish.bridge.errors import validation
from triggerfish.bridge.validation import type_of
from triggerfish.errors import NotAcceptableError
from triggerfish.json_input import loads

V2_JSON = "application/vnd.kafka.v2+json"
APPLICATION_JSON = "application/json"

#: JSON Schema int32 and int64 bounds
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


class Format(enum.StrEnum):
    JSON = "json"
    BINARY = "binary"
    TEXT = "text"
    # Confluent REST proxy's formats, served only with a schema registry configured
    AVRO = "avro"
    PROTOBUF = "protobuf"
    JSONSCHEMA = "jsonschema"

    @property
    def content_type(self) -> str:
        return f"application/vnd.kafka.{self.value}.v2+json"

    @property
    def uses_registry(self) -> bool:
        return self in _REGISTRY_FORMATS


_REGISTRY_FORMATS = frozenset((Format.AVRO, Format.PROTOBUF, Format.JSONSCHEMA))
#: The top-level fields of a produce body in a registry format, besides ``records``.
SCHEMA_FIELDS = ("key_schema", "key_schema_id", "value_schema", "value_schema_id")


_BY_CONTENT_TYPE = {f.content_type: f for f in Format}


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type header, lower-cased, without parameters."""
    return (header or "").split(";", 1)[0].strip().lower()


def format_of(content_type: str | None) -> Format | None:
    return _BY_CONTENT_TYPE.get(media_type(content_type))


def _parse_json(body: bytes) -> Any:
    return parse_json_body(body)[0]


def parse_json_body(body: bytes) -> tuple[Any, bool]:
    """The JSON document of a request body (Strimzi's 400 if it is not JSON), and whether it is ``plain``:
    read by orjson and holding no float, so that orjson writes its parts as ``dumps`` does (``body_json``)."""
    fast = body_json.read(body)
    if fast is not None:
        return fast
    try:
        return loads(body, parse_constant=_no_constants), False
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation([f"Request body is not valid JSON: {exc}"]) from None


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# JSONEncoder builds its C encoder on every call; for one per record, build it once (no cycle check:
# the input came from json.loads and cannot be circular)
_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)  # CPython's C accelerator; typeshed omits it
_C_ENCODER = (_MAKE_ENCODER(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, False)
              if _MAKE_ENCODER is not None else None)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, as Jackson writes them (no spaces, non-ASCII kept)."""
    if isinstance(obj, str):
        return json.encoder.encode_basestring(obj).encode()
    if _C_ENCODER is not None and isinstance(obj, (dict, list)):
        return "".join(_C_ENCODER(obj, 0)).encode()
    return _ENCODE(obj).encode()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# ---------------------------------------------------------------- consuming


#: Turns a polled record's key or value bytes into JSON: (the bytes, "key" or "value").
Decoder = Callable[[bytes, str], Any]


def record_json(fmt: Format, topic: str, key: bytes | None, value: bytes | None, partition: int, offset: int,
                timestamp: int, headers: Sequence[tuple[str, bytes | None]] | None,
                decode: Decoder | None = None) -> dict[str, Any]:
    """One ``ConsumerRecord`` as a JSON-ready dict (field order as Strimzi writes it); ``decode`` for registry formats."""
    if decode is None:
        show = _SHOW.get(fmt, _show_json)  # a registry format without a registry reads as json, as it did
        key, value = None if key is None else show(key), None if value is None else show(value)
    else:
        key, value = None if key is None else decode(key, "key"), None if value is None else decode(value, "value")
    rec: dict[str, Any] = {"topic": topic, "key": key, "value": value, "partition": partition, "offset": offset,
                           "timestamp": timestamp}
    if headers:
        rec["headers"] = [{"key": k, "value": None if v is None else _b64(v)} for k, v in headers]
    return rec


def records_json(fmt: Format, msgs: Sequence[Any]) -> list[dict[str, Any]]:
    """``record_json`` of each of a poll's messages (confluent-kafka ``Message``s, none of them an error), in
    fewer steps: the same dicts. ``NotAcceptableError`` if a json consumer cannot read one (which one may
    differ from ``record_json``'s first: the caller asks that for the error to answer).
    """
    show_all = _SHOW_ALL.get(fmt, parse_values)  # a registry format without a registry reads as json
    try:
        keys, values = show_all([m.key() for m in msgs]), show_all([m.value() for m in msgs])
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotAcceptableError(f"Failed to decode: {exc}") from None
    out = [{"topic": m.topic(), "key": k, "value": v, "partition": m.partition(), "offset": m.offset(),
            "timestamp": m.timestamp()[1]} for m, k, v in zip(msgs, keys, values, strict=True)]
    for rec, m in zip(out, msgs, strict=True):
        headers = m.headers()
        if headers:
            rec["headers"] = [{"key": k, "value": None if v is None else _b64(v)} for k, v in headers]
    return out


#: base64 text of bytes; pybase64's SIMD encoder is twice the stdlib's speed on a polled record's value
_b64 = pybase64.b64encode_as_string


def _show_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _show_json(data: bytes) -> Any:
    try:
        return parse_value(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotAcceptableError(f"Failed to decode: {exc}") from None  # json consumers only


#: How a polled key or value shows in each embedded format (one look-up per record, not a chain of tests)
_SHOW: dict[Format, Callable[[bytes], Any]] = {Format.BINARY: _b64, Format.TEXT: _show_text, Format.JSON: _show_json}
_SHOW_ALL: dict[Format, Callable[[Sequence[bytes | None]], list[Any]]] = {
    Format.BINARY: lambda raw: [None if r is None else _b64(r) for r in raw],
    Format.TEXT: lambda raw: [None if r is None else _show_text(r) for r in raw],
}


# ---------------------------------------------------------------- control-plane bodies


_CONSUMER_FIELDS: dict[str, type] = {
    "name": str, "format": str, "auto.offset.reset": str, "enable.auto.commit": bool,
    "fetch.min.bytes": int, "consumer.request.timeout.ms": int, "isolation.level": str,
}


def parse_consumer(body: bytes) -> dict[str, Any]:
    """The optional ``Consumer`` body of create-consumer; types checked strictly like Strimzi."""
    if not body.strip():
        return {}
    doc = _parse_json(body)
    if not isinstance(doc, dict):
        raise validation([f"Instance type {_type(doc)} is invalid. Expected object"])
    errors = []
    for k, v in doc.items():
        want = _CONSUMER_FIELDS.get(k)
        if want is None:
            errors.append(f'Property "{k}" does not match additional properties schema')
        elif want is int:
            n = check_int(v, f"/{k}", INT32, errors)
            if n is not None:
                doc[k] = n
        elif want is not int and not isinstance(v, want):
            errors.append(f"/{k}: Instance type {_type(v)} is invalid. Expected {_NAMES[want]}")
    if errors:
        raise validation(errors)
    return doc


def parse_object(body: bytes, fields: dict[str, str], required: Iterable[str] = ()) -> dict[str, Any]:
    """A small object body; ``fields`` maps names to 'string', 'integer', 'int|null', 'strings' or 'partitions'/'offsets'."""
    doc = _parse_json(body) if body.strip() else {}
    if not isinstance(doc, dict):
        raise validation([f"Instance type {_type(doc)} is invalid. Expected object"])
    errors: list[str] = []
    for r in required:
        if r not in doc:
            errors.append(f'Instance does not have required property "{r}"')
    for k, v in doc.items():
        kind = fields.get(k)
        if kind is None:
            errors.append(f'Property "{k}" does not match additional properties schema')
        elif kind == "string" and not isinstance(v, str):
            errors.append(f"/{k}: Instance type {_type(v)} is invalid. Expected string")
        elif kind == "int|null" and v is not None:
            doc[k] = check_int(v, f"/{k}", (-(2**1023), 2**1023), errors)  # any integer; range is the caller's
        elif kind == "strings":
            if not isinstance(v, list):
                errors.append(f"/{k}: Instance type {_type(v)} is invalid. Expected array")
            else:
                errors.extend(f"/{k}/{i}: Instance type {_type(x)} is invalid. Expected string"
                              for i, x in enumerate(v) if not isinstance(x, str))
        elif kind in ("partitions", "offsets"):
            _check_partitions(v, f"/{k}", kind == "offsets", errors)
    if errors:
        raise validation(errors)
    return doc


def _check_partitions(v: Any, where: str, with_offset: bool, errors: list[str]) -> None:
    if not isinstance(v, list):
        errors.append(f"{where}: Instance type {_type(v)} is invalid. Expected array")
        return
    allowed = ("topic", "partition", "offset") if with_offset else ("topic", "partition")
    for i, p in enumerate(v):
        at = f"{where}/{i}"
        if not isinstance(p, dict):
            errors.append(f"{at}: Instance type {_type(p)} is invalid. Expected object")
            continue
        for k in p:
            if k not in allowed:
                errors.append(f'{at}: Property "{k}" does not match additional properties schema')
        if with_offset:
            for r in allowed:
                if r not in p:
                    errors.append(f'{at}: Instance does not have required property "{r}"')
        if "topic" in p and not isinstance(p["topic"], str):
            errors.append(f"{at}/topic: Instance type {_type(p['topic'])} is invalid. Expected string")
        if "partition" in p:
            p["partition"] = check_int(p["partition"], f"{at}/partition", INT32, errors)
        if "offset" in p:
            p["offset"] = check_int(p["offset"], f"{at}/offset", INT64, errors)


def check_int(v: Any, where: str, bounds: tuple[int, int], errors: list[str]) -> int | None:
    """JSON Schema's integer: any number without a fractional part (``3.0`` counts). Returns it as int."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        errors.append(f"{where}: Instance type {_type(v)} is invalid. Expected integer")
        return None
    if not bounds[0] <= v <= bounds[1]:
        errors.append(f"{where}: Value {v} is out of range")
        return None
    return v


_NAMES = {str: "string", bool: "boolean", int: "integer"}


def _type(v: Any) -> str:
    return type_of(v)  # Strimzi's validator's names: every number is "number"
