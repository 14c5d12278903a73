"""What a handler prints or logs during one invocation, kept up to a cap however it is written.

``OutputCapture`` replaces ``sys.stdout`` and ``sys.stderr`` in the worker. The cap counts characters,
not calls: one 200 MB ``write`` keeps its first ``limit`` characters and drops the rest on the spot, so
at most the cap is ever held in the worker or sent to the engine. ``.buffer`` takes bytes the same way
(``sys.stdout.buffer.write``).
"""

from __future__ import annotations

import codecs
import io

LOG_LIMIT = 256 * 1024
"""Characters of handler output kept per invocation."""


def truncation_marker(limit: int, dropped: int) -> str:
    return f"\n[triggerfish] output truncated: {dropped} more characters past the {limit}-character limit per invocation\n"


class OutputCapture(io.TextIOBase):
    """Collects everything a handler writes to stdout/stderr or logs, per invocation, up to ``limit``."""

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0
        self.buffer = _BinaryCapture(self)

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        n = len(s)
        room = self.limit - self.size
        if n <= room:
            self.parts.append(s)
            self.size += n
        else:
            if room > 0:
                self.parts.append(s[:room])
                self.size = self.limit
            self.dropped += n - max(room, 0)
        return n

    def flush(self) -> None:
        pass

    def take(self) -> str:
        """The invocation's output (with a note of what was dropped), and start afresh."""
        text = "".join(self.parts)
        if self.dropped:
            text += truncation_marker(self.limit, self.dropped)
        self.parts.clear()
        self.size = self.dropped = 0
        return text


class _BinaryCapture(io.RawIOBase):
    """``sys.stdout.buffer``: bytes decoded as UTF-8 into the capture, sliced to the room left first."""

    def __init__(self, text: OutputCapture) -> None:
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(b)
        room = self._text.limit - self._text.size
        if n > room:
            # A UTF-8 character is at least one byte: ``room`` bytes never decode to more than ``room`` characters.
            self._text.dropped += n - max(room, 0)
            b = memoryview(b)[: max(room, 0)]
        if len(b):
            self._text.write(self._decoder.decode(b))
        return n
