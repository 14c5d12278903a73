"""The bridge's uvicorn protocol sends each response (status line, headers and body) with one write."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.config import Config
from uvicorn.server import ServerState

from triggerfish.bridge.one_write import DIRECT_BYTES, OneWriteHttpToolsProtocol


class _Recorder(asyncio.Transport):
    """A transport that keeps what is written to it."""

    def __init__(self) -> None:
        super().__init__({"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)})
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _answer(request: Request) -> Response:
    return Response(b'{"offsets":[{"partition":0,"offset":1}]}', media_type="application/vnd.kafka.v2+json")


def test_a_response_is_one_write_and_closing_sends_what_is_kept() -> None:
    async def run() -> None:
        config = Config(Starlette(routes=[Route("/t", _answer, methods=["POST"])]), http=OneWriteHttpToolsProtocol,
                        log_level="warning")
        config.load()
        transport = _Recorder()
        protocol = OneWriteHttpToolsProtocol(config, ServerState(), {})
        protocol.connection_made(transport)
        for _ in range(2):  # two requests on one keep-alive connection: two writes
            protocol.data_received(b"POST /t HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
            for _ in range(20):
                await asyncio.sleep(0)
        assert len(transport.writes) == 2
        for data in transport.writes:
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK") and body == b'{"offsets":[{"partition":0,"offset":1}]}'
        protocol.transport.write(b"kept")
        protocol.transport.close()  # before the loop's next turn: what is kept goes first
        assert transport.writes[-1] == b"kept" and transport.closed

    asyncio.run(run())


_BIG = b"[" + b",".join([b'{"value":"' + b"x" * 1000 + b'"}'] * 40) + b"]"


async def _big(request: Request) -> Response:
    return Response(_BIG, media_type="application/vnd.kafka.json.v2+json")


def test_a_large_body_goes_out_as_it_is_after_its_head() -> None:
    assert len(_BIG) >= DIRECT_BYTES

    async def run() -> None:
        config = Config(Starlette(routes=[Route("/big", _big)]), http=OneWriteHttpToolsProtocol, log_level="warning")
        config.load()
        transport = _Recorder()
        protocol = OneWriteHttpToolsProtocol(config, ServerState(), {})
        protocol.connection_made(transport)
        protocol.data_received(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(transport.writes) == 2  # the head, then the body unjoined (no copy of a poll's answer)
        assert transport.writes[0].startswith(b"HTTP/1.1 200 OK") and transport.writes[0].endswith(b"\r\n\r\n")
        assert transport.writes[1] == _BIG

    asyncio.run(run())
