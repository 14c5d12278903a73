"""The log lines of ``triggerfish run``: the engine's own records and what handlers print.

Both are written by hand-rolled formatting rather than Rich: a Rich log line costs ~2 ms of CPU
under the GIL, and at one line per invocation that capped ``BatchSize: 1`` at ~570 invocations/s.
A plain line costs ~20 µs. On a terminal the level and the function name keep their colours (ANSI);
piped to a file or a collector the lines are plain, with a full timestamp.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

_RESET = "\x1b[0m"
_LEVEL_COLOURS = {
    logging.DEBUG: "\x1b[32m", logging.INFO: "\x1b[34m", logging.WARNING: "\x1b[31m",
    logging.ERROR: "\x1b[1;31m", logging.CRITICAL: "\x1b[1;7;31m",
}
_CYAN, _DIM = "\x1b[36m", "\x1b[2m"


class _LineFormatter(logging.Formatter):
    """``15:04:05 INFO     message`` on a terminal, ``2026-11-30T15:04:05.123 INFO     message`` elsewhere."""

    def __init__(self, colour: bool) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(message)s",
                         datefmt="%H:%M:%S" if colour else "%Y-%m-%dT%H:%M:%S")
        self._colour = colour

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        stamp = super().formatTime(record, datefmt)
        return stamp if self._colour else f"{stamp}.{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if not self._colour:
            return line
        stamp, _, rest = line.partition(" ")
        level, rest = rest[:8], rest[8:]
        return f"{_DIM}{stamp}{_RESET} {_LEVEL_COLOURS.get(record.levelno, '')}{level}{_RESET}{rest}"


def setup_logging(level: str, stream: TextIO | None = None) -> None:
    """Send warnings from every library, and triggerfish's records from ``level`` up, to ``stream`` (stderr)."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(_LineFormatter(colour=out.isatty()))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("triggerfish").setLevel(level.upper())


class HandlerOutput:
    """Writes what a handler printed, one line per line, prefixed with its function and request id."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._out = stream or sys.stderr
        self._colour = self._out.isatty()
        self._lock = threading.Lock()  # handlers of several mappings print at once: lines must not interleave

    def __call__(self, function: str, request_id: str, text: str) -> None:
        if self._colour:
            prefix = f"{_CYAN}{function}{_RESET} {_DIM}{request_id[:8]}{_RESET} "
        else:
            prefix = f"{function} {request_id[:8]} "
        block = "".join(f"{prefix}{line}\n" for line in text.rstrip("\n").splitlines())
        with self._lock:
            self._out.write(block)
            self._out.flush()
