"""The worker threads that run the bridge's blocking Kafka calls, and the numbers Strimzi's ``executor_*`` metrics show.

Handlers hand blocking calls to ``Executor.run`` (Starlette's thread pool, bounded by anyio's limiter);
``stats`` reads the pool's size, busy and waiting counts from that limiter and counts the completed calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class ExecutorStats:
    pool_size: int
    active: int
    queued: int
    completed: int


class Executor:
    """Runs blocking calls on worker threads and counts them."""

    def __init__(self) -> None:
        self.completed = 0

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await run_in_threadpool(func, *args, **kwargs)
        finally:
            self.completed += 1

    def stats(self) -> ExecutorStats:
        """The pool now; call it on the event loop (outside one, only the completed count is known)."""
        try:
            limiter = anyio.to_thread.current_default_thread_limiter()
        except (RuntimeError, LookupError, anyio.NoEventLoopError):
            return ExecutorStats(0, 0, 0, self.completed)
        return ExecutorStats(int(limiter.total_tokens), int(limiter.borrowed_tokens),
                             limiter.statistics().tasks_waiting, self.completed)
