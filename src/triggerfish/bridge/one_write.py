"""uvicorn's httptools protocol, sending what a connection writes in one turn of the event loop as one write.

uvicorn writes a response's status line and headers, then its body, each with its own
``transport.write``; on a TCP transport each is a ``send(2)`` (and a wake-up of the client for each
segment). A produce answer is a few hundred bytes: the two sends cost the bridge (and the client)
about as much as the rest of a one-record request. Here the connection's writes are kept until the
event loop's next turn and sent joined: the same bytes, in the same order, one system call. Closing
sends what is kept first; a large write (a poll's answer) goes out at once, after what is kept.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Writes this large are not kept: copying them costs more than the second send saves, and a client
#: woken by the head reads it while the kernel copies the body (a 500-record poll's answer was ~7 %
#: slower sent in one write, BENCHMARKS.md).
DIRECT_BYTES = 16 * 1024


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose transport joins the writes of one event loop turn."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_JoinedWrites(transport, self.loop))


class _JoinedWrites(asyncio.Transport):
    """A transport that passes everything to ``inner`` but joins the writes made before the loop's next turn."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner = inner
        self._loop = loop
        self._kept: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if len(data) >= DIRECT_BYTES:  # a poll's answer: sent as it is, after what is kept (no copies)
            self._send()
            self._inner.write(data)
            return
        if not self._kept:
            self._loop.call_soon(self._send)
        self._kept.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _send(self) -> None:
        if not self._kept:
            return
        data = self._kept[0] if len(self._kept) == 1 else b"".join(self._kept)
        self._kept.clear()
        if not self._inner.is_closing():
            self._inner.write(data)

    def close(self) -> None:
        self._send()
        self._inner.close()

    def abort(self) -> None:
        self._kept.clear()
        self._inner.abort()

    def write_eof(self) -> None:
        self._send()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(map(len, self._kept))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)
