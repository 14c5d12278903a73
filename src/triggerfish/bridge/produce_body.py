"""Produce request bodies (``ProducerRecordList``, ``ProducerRecordToPartitionList``) to records in Kafka's bytes.

Protocol only: no Kafka client here. Bodies are checked against the shapes of Strimzi's OpenAPI schemas
by hand (a generic schema validator costs more than the rest of a produce request); failures are 400
with Strimzi's ``validation_errors`` strings. The usual body, records of a value and perhaps a key, is
read in a few list passes into ``PlainRecords``; any other goes record by record into ``OutRecord``s,
which gives the same answers, and the errors.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import orjson

from triggerfish.bridge.errors import validation
from triggerfish.bridge.formats import INT32, INT64, Format, check_int, dumps, parse_json_body
from triggerfish.bridge.validation import type_of
from triggerfish.errors import UnprocessableError


@dataclass(slots=True)
class OutRecord:
    """One record to send, already in Kafka's bytes."""

    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    timestamp: int | None = None
    headers: list[tuple[str, bytes]] | None = None


class PlainRecords(Sequence[OutRecord]):
    """Records of a value and perhaps a key only (no partition, timestamp or headers), in Kafka's bytes, kept as
    two lists (``keys[i]`` is ``None`` for a record without a key): the producer sends them without an
    ``OutRecord`` each."""

    __slots__ = ("keys", "values")

    def __init__(self, values: list[bytes | None], keys: list[bytes | None]) -> None:
        self.values, self.keys = values, keys

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, i: int) -> OutRecord: ...

    @overload
    def __getitem__(self, i: slice) -> list[OutRecord]: ...

    def __getitem__(self, i: int | slice) -> OutRecord | list[OutRecord]:
        if isinstance(i, slice):
            return [OutRecord(v, k) for v, k in zip(self.values[i], self.keys[i], strict=True)]
        return OutRecord(self.values[i], self.keys[i])


_RECORD_FIELDS = frozenset(("value", "key", "partition", "timestamp", "headers"))
_PARTITION_RECORD_FIELDS = frozenset(("value", "key", "headers"))
_JSON_TYPES = (str, list, dict)


#: Turns a record's ``value`` or ``key`` JSON into Kafka bytes: (the JSON, "value" or "key", record index).
Encoder = Callable[[Any, str, int], "bytes | None"]


def parse_records(body: bytes, fmt: Format, to_partition: bool = False) -> Sequence[OutRecord]:
    """Parse a ``ProducerRecordList`` (or ``ProducerRecordToPartitionList``) body into records."""
    doc, plain = _record_list(body, ())
    records = doc.get("records")
    if records.__class__ is list:
        found = _plain_records(records, fmt, plain)
        if found is not None:
            return found
    encode: Encoder = _encode_plain if plain and fmt is Format.JSON else lambda obj, what, i: _encode(obj, fmt, what)
    return records_of(doc, encode, to_partition)


def parse_record_list(body: bytes, extra_fields: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON object of a produce body; top-level fields beyond ``records`` and ``extra_fields`` are refused."""
    return _record_list(body, extra_fields)[0]


def _record_list(body: bytes, extra_fields: Iterable[str]) -> tuple[dict[str, Any], bool]:
    doc, plain = parse_json_body(body)
    if not isinstance(doc, dict):
        raise validation([f"Instance type {type_of(doc)} is invalid. Expected object"])
    extra = [k for k in doc if k != "records" and k not in extra_fields]
    if extra:
        raise validation([f'Property "{extra[0]}" does not match additional properties schema'])
    return doc, plain


def _plain_records(records: list[Any], fmt: Format, plain: bool) -> PlainRecords | None:
    """``records`` as ``PlainRecords`` when each is ``{"value": v}`` or ``{"value": v, "key": k}`` that Strimzi's
    schema takes (``v`` an array, object, string or null, ``k`` an array, object or string); else ``None``."""
    values: list[Any] = []
    keys: list[Any] = []
    for rec in records:
        if rec.__class__ is not dict or "value" not in rec:
            return None
        value = rec["value"]
        if not (value is None or isinstance(value, _JSON_TYPES)):
            return None
        if len(rec) == 1:
            keys.append(None)
        elif len(rec) == 2 and "key" in rec and isinstance(rec["key"], _JSON_TYPES):
            keys.append(rec["key"])
        else:
            return None
        values.append(value)
    if not (plain and fmt is Format.JSON):
        # other formats can refuse a value or key: in record order, value first, as ``records_of`` does
        out_values: list[bytes | None] = []
        out_keys: list[bytes | None] = []
        for value, key in zip(values, keys, strict=True):
            out_values.append(_encode(value, fmt, "value"))
            out_keys.append(None if key is None else _encode(key, fmt, "key"))
        return PlainRecords(out_values, out_keys)
    write = orjson.dumps
    try:
        return PlainRecords([None if v is None else write(v) for v in values],
                            [None if k is None else write(k) for k in keys])
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return PlainRecords([_encode_plain(v, "value", i) for i, v in enumerate(values)],
                            [_encode_plain(k, "key", i) for i, k in enumerate(keys)])


def records_of(doc: dict[str, Any], encode: Encoder, to_partition: bool = False, any_json: bool = False) -> list[OutRecord]:
    """The records of a produce body, keys and values through ``encode``; ``any_json`` lets them be numbers too."""
    if "records" not in doc:
        # Strimzi's answer to a body without records (its message is a Java NullPointerException's)
        raise UnprocessableError('The request body has no "records" array; send {"records": [...]}')
    records = doc["records"]
    if not isinstance(records, list):
        raise validation([f"/records: Instance type {type_of(records)} is invalid. Expected array"])
    allowed = _PARTITION_RECORD_FIELDS if to_partition else _RECORD_FIELDS
    errors: list[str] = []
    out: list[OutRecord] = []
    for i, rec in enumerate(records):
        checked = _checked_record(rec, f"/records/{i}", allowed, any_json, errors)
        if checked is None or errors:
            continue
        value, key, partition, timestamp, headers = checked
        out.append(OutRecord(encode(value, "value", i), None if "key" not in rec else encode(key, "key", i),
                             partition, timestamp, headers))
    if errors:
        raise validation(errors)
    return out


_Checked = tuple[Any, Any, "int | None", "int | None", "list[tuple[str, bytes]] | None"]


def _checked_record(rec: Any, where: str, allowed: frozenset[str], any_json: bool, errors: list[str]) -> _Checked | None:
    """A record's (value, key, partition, timestamp, headers), Strimzi's complaints about it added to ``errors``;
    ``None`` when it is not an object or has no value."""
    if not isinstance(rec, dict):
        errors.append(f"{where}: Instance type {type_of(rec)} is invalid. Expected object")
        return None
    for k in rec:
        if k not in allowed:
            errors.append(f'{where}: Property "{k}" does not match additional properties schema')
    if "value" not in rec:
        errors.append(f'{where}: Instance does not have required property "value"')
        return None
    value, key = rec["value"], rec.get("key")
    if not (value is None or any_json or isinstance(value, _JSON_TYPES)):
        errors.append(f"{where}/value: Instance type {type_of(value)} is invalid. Expected array, object, string or null")
    if "key" in rec and not (any_json and key is not None) and not isinstance(key, _JSON_TYPES):
        errors.append(f"{where}/key: Instance type {type_of(key)} is invalid. Expected array, object or string")
    partition = check_int(rec["partition"], f"{where}/partition", INT32, errors) if "partition" in rec else None
    timestamp = check_int(rec["timestamp"], f"{where}/timestamp", INT64, errors) if "timestamp" in rec else None
    headers = _headers(rec["headers"], f"{where}/headers", errors) if "headers" in rec else None
    return value, key, partition, timestamp, headers


def _encode_plain(obj: Any, what: str, i: int) -> bytes | None:
    """``_encode`` in the json format of a value from a ``plain`` body (``formats.parse_json_body``): orjson
    writes it as ``dumps`` would."""
    if obj is None:
        return None
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return dumps(obj)  # nested deeper than orjson writes


def _encode(obj: Any, fmt: Format, what: str) -> bytes | None:
    if obj is None:
        return None  # a real tombstone, in every format
    if fmt is Format.JSON:
        return dumps(obj)
    if not isinstance(obj, str):
        kind = "a base64 encoded string" if fmt is Format.BINARY else "a string"
        raise UnprocessableError(f"Because the embedded format is '{fmt.value}', the {what} must be {kind}")
    if fmt is Format.TEXT:
        return obj.encode()
    try:
        return base64.b64decode(obj, validate=True)
    except (binascii.Error, ValueError):
        raise UnprocessableError(f"Because the embedded format is 'binary', the {what} must be base64 encoded; "
                          f"{obj[:40]!r} is not") from None


def _headers(headers: Any, where: str, errors: list[str]) -> list[tuple[str, bytes]] | None:
    if not isinstance(headers, list):
        errors.append(f"{where}: Instance type {type_of(headers)} is invalid. Expected array")
        return None
    out: list[tuple[str, bytes]] = []
    for j, h in enumerate(headers):
        at = f"{where}/{j}"
        if not isinstance(h, dict):
            errors.append(f"{at}: Instance type {type_of(h)} is invalid. Expected object")
            continue
        for req in ("key", "value"):
            if req not in h:
                errors.append(f'{at}: Instance does not have required property "{req}"')
        k, v = h.get("key"), h.get("value")
        if "key" in h and not isinstance(k, str):
            errors.append(f"{at}/key: Instance type {type_of(k)} is invalid. Expected string")
        if "value" in h and not isinstance(v, str):
            errors.append(f"{at}/value: Instance type {type_of(v)} is invalid. Expected string")
        if isinstance(k, str) and isinstance(v, str):
            try:
                out.append((k, base64.b64decode(v, validate=True)))
            except (binascii.Error, ValueError):
                errors.append(f"{at}/value: header values must be base64 encoded")
    return out
