"""uvicorn's server with its housekeeping once a second rather than ten times, shut down at once when asked.

uvicorn's ``Server.main_loop`` wakes every 0.1 s to refresh the Date header and see whether it should exit: the
most frequent wake-up of an idle engine, and of an idle bridge sidecar. ``TickingServer`` wakes once a second
and ends that wait as soon as it is asked to stop: by ``exit_soon`` (from any thread) or by a signal.
Both the control API (``api.server``) and the HTTP bridge (``bridge.server``) run on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import FrameType

import uvicorn

#: How often the server wakes while idle.
TICK_S = 1.0
#: uvicorn's ``on_tick`` refreshes the Date header when its counter is a multiple of 10 (once a second at 0.1 s).
_TICKS_PER_S = 10


class TickingServer(uvicorn.Server):
    """uvicorn's server ticking every ``TICK_S``; ``exit_soon`` and signals end the wait for the next tick at once."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exiting = asyncio.Event()  # (bound to the server's loop when first waited on)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets=sockets)

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + _TICKS_PER_S) % 864000  # uvicorn's wrap-around, a day of ticks
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exiting.wait(), TICK_S)

    async def exiting(self) -> None:
        """Return once the server was asked to exit."""
        await self._exiting.wait()

    def exit_soon(self) -> None:
        """Shut down gracefully (``should_exit``) without waiting for the next tick to notice."""
        self.should_exit = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended meanwhile
                loop.call_soon_threadsafe(self._exiting.set)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)  # (a second Ctrl-C forces the exit, as uvicorn's)
        self.exit_soon()
