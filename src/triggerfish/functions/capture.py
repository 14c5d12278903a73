"""What a handler prints or logs during one invocation, kept up to a cap however it is written.

``OutputCapture`` replaces ``sys.stdout`` and ``sys.stderr`` in the worker. The cap counts characters,
not calls: one 200 MB ``write`` keeps its first ``limit`` characters and drops the rest on the spot, so
at most the cap is ever held in the worker or sent to the engine. ``.buffer`` takes bytes the same way
(``sys.stdout.buffer.write``). ``FdCapture`` points file descriptors 1 and 2 at a pipe read by a thread
into the same capture, so ``os.write(1, ...)``, C extensions and child processes are capped too
instead of writing straight into the engine's own output.
"""

from __future__ import annotations

import codecs
import io
import os
import select
import threading

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
        # handler threads and FdCapture's reader write too: keep the accounting whole
        self.lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        n = len(s)
        with self.lock:
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
        if not self.size and not self.dropped:  # nothing written (most invocations): no lock, no join
            return ""
        with self.lock:
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
        with self._text.lock:
            room = self._text.limit - self._text.size
            if n > room:
                # A UTF-8 character is at least one byte: ``room`` bytes never decode to more characters.
                self._text.dropped += n - max(room, 0)
                b = memoryview(b)[: max(room, 0)]
        if len(b):
            self._text.write(self._decoder.decode(b))
        return n


class FdCapture:
    """Descriptors 1 and 2 into ``capture`` through a pipe and a reader thread (see the module docstring).

    The thread picks output up as it comes, so the worker never holds more than the cap of it. Once
    any has come, ``sync`` at the end of each invocation reads what is still in the pipe, so it lands in
    that invocation's log; before that, no invocation pays a syscall for it (the first such write, done
    just before the handler returns, may show in the next invocation's log).
    """

    def __init__(self, capture: OutputCapture) -> None:
        self._capture = capture
        self._read_fd, write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        for fd in (1, 2):
            os.dup2(write_fd, fd)
        os.close(write_fd)
        self.seen = False
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="triggerfish-fd-capture", daemon=True).start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._read_fd, select.POLLIN)
        while True:
            poller.poll()
            if not self.sync():
                return

    def sync(self) -> bool:
        """Move what is in the pipe into the capture; False once every writer has closed it."""
        with self._lock:
            while True:
                try:
                    chunk = os.read(self._read_fd, 1 << 16)
                except BlockingIOError:
                    return True
                if not chunk:
                    return False
                self.seen = True
                self._capture.buffer.write(chunk)
