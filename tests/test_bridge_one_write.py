"""A response's head and body leave the bridge in one write; nothing is held past the event loop's turn."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish.bridge.one_write import OneWriteHttpTools, _HeadHeld


class _Recorder(asyncio.Transport):
    """A transport that records what it was asked to send, call by call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[bytes]]] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", [bytes(data)]))

    def writelines(self, chunks: Any) -> None:
        self.calls.append(("writelines", [bytes(c) for c in chunks]))

    def close(self) -> None:
        self.calls.append(("close", []))
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


def test_a_head_and_the_body_after_it_go_out_in_one_call() -> None:
    async def main() -> list[tuple[str, list[bytes]]]:
        rec = _Recorder()
        held = _HeadHeld(rec, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        assert rec.calls == []  # waits for the body
        held.write(b"hello")
        await asyncio.sleep(0)
        return rec.calls

    assert asyncio.run(main()) == [("writelines", [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", b"hello"])]


def test_a_head_with_no_body_after_it_goes_out_on_the_next_loop_turn() -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        rec = _Recorder()
        held = _HeadHeld(rec, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        before = list(rec.calls)
        await asyncio.sleep(0)
        return before, rec.calls

    before, after = asyncio.run(main())
    assert before == []
    assert after == [("write", [b"HTTP/1.1 204 No Content\r\n\r\n"])]


def test_close_sends_a_held_head_first_and_a_large_write_is_not_held() -> None:
    async def main() -> list[tuple[str, list[bytes]]]:
        rec = _Recorder()
        held = _HeadHeld(rec, asyncio.get_running_loop())
        big = b"x" * 100_000
        held.write(big)
        held.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        held.close()
        await asyncio.sleep(0)
        return rec.calls

    assert asyncio.run(main()) == [("write", [b"x" * 100_000]), ("write", [b"HTTP/1.1 400 Bad Request\r\n\r\n"]),
                                   ("close", [])]


def test_a_response_served_through_the_protocol_arrives_whole() -> None:
    body = b"y" * 20_000

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type="application/octet-stream")

    app = Starlette(routes=[Route("/r", endpoint)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, http=OneWriteHttpTools, log_level="warning", lifespan="off"))

    async def main() -> bytes:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /r HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)  # the whole answer is sent by now
        first = await reader.read(1_000_000)
        writer.close()
        server.should_exit = True
        await serving
        return first

    first = asyncio.run(main())
    head, _, rest = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"content-length: 20000" in head.lower()
    assert rest == body
