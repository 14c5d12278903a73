"""The control API's server ticks once a second (``api/server.py``): the Date header still moves on each second,
and a stop does not wait for the next tick."""

from __future__ import annotations

import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from triggerfish.api.server import ApiServer


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def test_the_date_header_moves_on_each_second_and_stop_ends_the_server() -> None:
    server = ApiServer(Starlette(routes=[Route("/", _hello)]), port=0)
    url = server.start()
    try:
        first = httpx.get(url)
        time.sleep(1.5)  # at least one tick later
        second = httpx.get(url)
    finally:
        thread = server._thread
        server.stop(timeout=10)
    assert first.text == second.text == "hello"
    assert first.headers["date"] != second.headers["date"]
    assert thread is not None and not thread.is_alive()
