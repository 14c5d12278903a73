"""Request bodies read, and produced records' JSON written, with orjson where it answers as the stdlib does.

orjson reads and writes JSON several times faster than the stdlib, but not always alike: integers
beyond 64 bits read as floats, floats are written in another form (``1e-05`` as ``0.00001``), it
reads no ``NaN``, BOM, UTF-16 or lone surrogate (``"\\ud800"``), and it nests up to 1024 levels where
``json_input.MAX_DEPTH`` is 512. One pass over the body's bytes tells whether it could hold a run of
19 digits (the only way to a big integer) or a float (a digit followed by ``.``, ``e`` or ``E``);
any body orjson refuses goes the stdlib's way (``json_input.loads``), which gives the error it gave
before, or reads the body as it did. So every answer is byte for byte the stdlib path's.
"""

from __future__ import annotations

from typing import Any

import orjson

from triggerfish.json_input import MAX_DEPTH

# Only the bytes the checks need are kept: digits, what may follow a float's digit (".eE"), the brackets, and
# what follows any number (",}]", so that a number is never read as next to a later letter); then digits
# become "0", ".eE" ".", brackets "[". A digit in a string next to an "e" (or a letter dropped between
# them: "v1beta") reads as a float: such a body is only written the slower way.
_KEEP = b"0123456789.eE[{,}]"
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_CLASS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E if b in b".eE" else 0x5B if b in b"[{" else b for b in range(256))
_LONG_RUN = b"0" * 19
_FLOAT = b"0."


def read(body: bytes) -> tuple[Any, bool] | None:
    """``(document, plain)`` when orjson reads ``body`` as the stdlib would, else ``None`` (the caller reads it
    the stdlib's way). ``plain``: the document holds no float, so ``write`` gives the stdlib's bytes for its parts.
    """
    scan = body.translate(None, _DROP).translate(_CLASS)
    if _LONG_RUN in scan:
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # NaN, a BOM, a lone surrogate, or not JSON: the stdlib says which, as before
    if scan.count(b"[") > MAX_DEPTH and not _shallow(doc):
        return None  # perhaps nested deeper than MAX_DEPTH: the stdlib path's check decides
    return doc, _FLOAT not in scan


def _shallow(doc: Any) -> bool:
    """True when ``doc`` nests at most ~254 levels (orjson writes no deeper), well under ``MAX_DEPTH``."""
    try:
        orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return False
    return True


def write(obj: Any) -> bytes | None:
    """Compact JSON of a part of a ``plain`` document, as the stdlib writes it; ``None`` when orjson cannot
    (nested deeper than it writes)."""
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return None
