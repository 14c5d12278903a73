"""The pipe framing between the engine and worker processes: a JSON header and a raw body.

Frame = 8 bytes (header length, body length; big-endian) + header JSON + body bytes. The body is
the event or result JSON exactly as produced (or a Kafka batch packed by ``functions.batch.pack_records``),
so large payloads are never re-encoded on the way.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

_LENGTHS = struct.Struct(">II")


def encode_frame(header: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return _LENGTHS.pack(len(head), len(body)) + head + body


def write_frame(stream: BinaryIO, header: dict[str, Any], body: bytes) -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    stream.write(_LENGTHS.pack(len(head), len(body)))
    stream.write(head)
    stream.write(body)
    stream.flush()


def read_frame(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame from a blocking stream; None at end of stream."""
    prefix = stream.read(_LENGTHS.size)
    if len(prefix) < _LENGTHS.size:
        return None
    head_len, body_len = _LENGTHS.unpack(prefix)
    head = stream.read(head_len)
    body = stream.read(body_len)
    if len(head) < head_len or len(body) < body_len:
        return None
    return json.loads(head), body


def split_lengths(prefix: bytes) -> tuple[int, int]:
    head_len, body_len = _LENGTHS.unpack(prefix)
    return head_len, body_len


PREFIX_SIZE = _LENGTHS.size
