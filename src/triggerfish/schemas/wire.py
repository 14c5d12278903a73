"""The framing schema registries put around a record's bytes.

* Confluent: magic byte ``0x00``, the schema id as 4 big-endian bytes, then the payload (Protobuf
  payloads start with the message-index array: zigzag varints, a lone ``0`` meaning ``[0]``).
* AWS Glue: header version ``3``, compression ``0`` (none) or ``5`` (zlib), the schema version's
  16-byte UUID, then the payload (Protobuf payloads start with one unsigned varint: the message's index
  among the file's messages sorted by full name, see :mod:`.protobuf`).
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass

from triggerfish.schemas.errors import DESERIALIZATION_ERROR, RecordSchemaError

CONFLUENT_MAGIC = 0
GLUE_VERSION = 3
GLUE_NONE, GLUE_ZLIB = 0, 5
_ID = struct.Struct(">I")


@dataclass(frozen=True)
class Framed:
    #: The registry's schema id: a number (Confluent) or a schema version UUID (Glue), as a string.
    schema_id: str
    #: The bytes after the header (Glue: decompressed): what EventRecordFormat SOURCE delivers.
    payload: bytes


def confluent(data: bytes) -> Framed:
    """Split a Confluent-framed record; RecordSchemaError when it is not framed."""
    if len(data) < 5 or data[0] != CONFLUENT_MAGIC:
        raise RecordSchemaError(DESERIALIZATION_ERROR, _unframed(data, "magic byte 0x00 and a 4-byte schema id"))
    return Framed(str(_ID.unpack_from(data, 1)[0]), data[5:])


def glue(data: bytes) -> Framed:
    """Split a Glue-framed record (decompressing a zlib payload)."""
    if len(data) < 18 or data[0] != GLUE_VERSION or data[1] not in (GLUE_NONE, GLUE_ZLIB):
        raise RecordSchemaError(DESERIALIZATION_ERROR,
                                _unframed(data, "header version 3, compression 0 or 5 and a 16-byte schema version UUID"))
    payload = data[18:]
    if data[1] == GLUE_ZLIB:
        try:
            payload = zlib.decompress(payload)
        except zlib.error as exc:
            raise RecordSchemaError(DESERIALIZATION_ERROR, f"the zlib-compressed Glue payload is damaged ({exc})") from None
    return Framed(str(uuid.UUID(bytes=data[2:18])), payload)


def glue_frame(version_id: str, payload: bytes, *, compress: bool = False) -> bytes:
    """A record in Glue's wire format (what Glue's serializers write)."""
    body = zlib.compress(payload) if compress else payload
    return bytes([GLUE_VERSION, GLUE_ZLIB if compress else GLUE_NONE]) + uuid.UUID(version_id).bytes + body


def message_indexes(payload: bytes) -> tuple[list[int], int]:
    """A Confluent Protobuf payload's message-index array and where the message starts."""
    count, pos = _zigzag(payload, 0)
    if count == 0:
        return [0], pos
    indexes = []
    for _ in range(count):
        index, pos = _zigzag(payload, pos)
        indexes.append(index)
    return indexes, pos


def glue_message_index(payload: bytes) -> tuple[int, int]:
    """A Glue Protobuf payload's message index (an unsigned varint) and where the message starts."""
    return _varint(payload, 0, "the Glue Protobuf message index")


def _zigzag(data: bytes, pos: int) -> tuple[int, int]:
    value, pos = _varint(data, pos, "the Protobuf message-index array")
    return (value >> 1) ^ -(value & 1), pos


def _varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise RecordSchemaError(DESERIALIZATION_ERROR, f"{what} is cut short")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _unframed(data: bytes, expected: str) -> str:
    head = data[:5].hex() or "empty"
    return f"the record is not framed for the schema registry (starts with {head}; expected {expected})"
