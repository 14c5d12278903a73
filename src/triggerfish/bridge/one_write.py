"""uvicorn's HTTP protocol with a response's head and body sent in one system call.

uvicorn writes a response's status line and headers as soon as the app sends them, and the body
after: two writes, two TCP segments (uvloop sets ``TCP_NODELAY``), and a client that blocks on the
head wakes up twice. A poll answer of ~150 KB then costs a context switch in the middle of the write
on a busy machine. Here a write small enough to be a head waits for the next write on the connection
(it follows at once when the app sends both in one step, as Starlette's ``Response`` does) and both
go out as one ``writev`` (``writelines``, no copy of the body), or, if none follows, on the event
loop's next turn: nothing is held longer than that, and the order of writes is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Writes up to this size wait for the next one (a head is a few hundred bytes).
_HEAD_BYTES = 4096


class _HeadHeld:
    """A transport whose small write is held until the next write or the loop's next turn."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif len(data) <= _HEAD_BYTES and not self._transport.is_closing():
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        self.flush()
        self._transport.writelines(chunks)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        # everything else (reading, flow control, extra info) is the transport's own
        return getattr(self._transport, name)


class OneWriteHttpTools(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose responses leave in one write (pass as ``uvicorn.Config(http=...)``)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        held: Any = _HeadHeld(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(held)
