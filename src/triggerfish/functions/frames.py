"""The pipe framing between the engine and worker processes: a JSON header and a raw body.

Frame = 8 bytes (header length, body length; big-endian) + header JSON + body bytes. The body is
the event or result JSON exactly as produced (or a Kafka batch packed by ``functions.batch.pack_records``),
so large payloads are never re-encoded on the way. A request body of ``region.REGION_MIN`` bytes or more
travels in the worker's shared region instead: its header then says ``"region": <length>`` and the frame's
body is empty. Headers are our own protocol (not Lambda's bytes), so
they go through orjson; a header orjson refuses (a lone surrogate in captured output) falls back to ``json``.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

import orjson

_LENGTHS = struct.Struct(">II")


def _dumps(header: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(header)
    except TypeError:  # orjson.JSONEncodeError: e.g. a lone surrogate that json escapes as \udxxx
        return json.dumps(header, separators=(",", ":")).encode()


def decode_header(head: bytes) -> dict[str, Any]:
    """A frame's header from its JSON bytes."""
    try:
        header: dict[str, Any] = orjson.loads(head)
    except ValueError:  # orjson.JSONDecodeError: the \udxxx escapes of _dumps' json fallback
        header = json.loads(head)
    return header


def encode_head(header: dict[str, Any], body_len: int) -> bytes:
    """A frame up to its body: the body is then written as it is (no copy of a 1 MB batch into the frame)."""
    head = _dumps(header)
    return _LENGTHS.pack(len(head), body_len) + head


def write_frame(stream: BinaryIO, header: dict[str, Any], body: bytes) -> None:
    stream.write(encode_head(header, len(body)))
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
    return decode_header(head), body


def split_lengths(prefix: bytes) -> tuple[int, int]:
    head_len, body_len = _LENGTHS.unpack(prefix)
    return head_len, body_len


PREFIX_SIZE = _LENGTHS.size
