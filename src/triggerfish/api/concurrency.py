"""ReservedConcurrentExecutions: at most N invocations of a function at once, the rest refused.

Lambda throttles rather than queues a synchronous call over the limit (HTTP 429,
``TooManyRequestsException``, reason ``ReservedFunctionConcurrentInvocationLimitExceeded``), which
is what makes ``ReservedConcurrentExecutions: 1`` a single-flight guarantee. Asynchronous (Event)
invocations wait for a slot instead, as Lambda's internal queue does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from triggerfish.errors import ThrottledError


class ConcurrencyLimits:
    """In-flight counters per function. Used from one event loop, so plain counters suffice."""

    def __init__(self) -> None:
        self._in_flight: dict[str, int] = {}
        self._released: dict[str, asyncio.Condition] = {}

    def in_flight(self, name: str) -> int:
        return self._in_flight.get(name, 0)

    @contextlib.asynccontextmanager
    async def slot(self, name: str, limit: int | None, *, wait: bool = False) -> AsyncIterator[None]:
        """Hold one of ``limit`` slots; ``limit=None`` is unlimited. Over the limit: raise 429, or wait."""
        if limit is not None:
            if self.in_flight(name) >= limit:
                if not wait:
                    raise ThrottledError("Rate Exceeded.")
                condition = self._released.setdefault(name, asyncio.Condition())
                async with condition:
                    await condition.wait_for(lambda: self.in_flight(name) < limit)
        self._in_flight[name] = self.in_flight(name) + 1
        try:
            yield
        finally:
            self._in_flight[name] -= 1
            released = self._released.get(name)
            if released is not None:
                async with released:
                    released.notify_all()
