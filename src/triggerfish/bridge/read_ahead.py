"""Polls of a consumer instance that drains a backlog: the next batch is read while the client reads this one.

When a poll's answer fills ``max.poll.records``, a worker thread takes the instance's next batch (the
records librdkafka already holds, turned into the answer's body) at once, so the client's next poll is
answered from memory; a poll that finds the read-ahead batch not full tops it up as any poll would. A
batch read ahead is not handed over until a poll answers it, so its offsets are not stored, and neither
auto-commit nor a commit without offsets covers it. Operations that move the instance's positions
(subscribe, assign, seek, unsubscribe) first give it back (``settle``): its partitions are rewound.
Whoever takes the batch out of ``Instance.ahead`` (one step on the event loop) answers it or gives it
back, so none is lost; a poll that waits for records does not hold up a settle, nor a delete.
"""

from __future__ import annotations

import asyncio

from triggerfish.bridge.batches import Batch, too_large
from triggerfish.bridge.consumers import Instance, Registry
from triggerfish.bridge.executor import Executor
from triggerfish.errors import TriggerfishError


async def poll(registry: Registry, executor: Executor, inst: Instance, timeout_ms: int, max_bytes: int | None) -> Batch:
    """The answer to ``GET .../records``, handed over (offsets stored)."""
    batch = await _take_ahead(inst)
    if batch is None:
        batch = await executor.run(registry.fetch, inst, timeout_ms, max_bytes)
    elif not batch.full:
        batch = await executor.run(registry.fetch, inst, timeout_ms, max_bytes, batch)
    else:
        problem = too_large(batch, max_bytes)
        if problem is not None:
            await executor.run(registry.give_back, inst, batch)
            raise problem
    registry.hand_over(inst, batch)
    if batch.full and inst.ahead is None:
        ahead = asyncio.ensure_future(executor.run(registry.read_ahead, inst))
        ahead.add_done_callback(_retrieve)
        inst.ahead = ahead
    return batch


async def settle(registry: Registry, executor: Executor, inst: Instance, give_back: bool = True) -> None:
    """Before an operation that moves the instance's positions (or, ``give_back=False``, closes it):
    the batch read ahead, if any, is rewound (or dropped)."""
    batch = await _take_ahead(inst)
    if batch is not None and give_back:
        await executor.run(registry.give_back, inst, batch)


async def _take_ahead(inst: Instance) -> Batch | None:
    ahead, inst.ahead = inst.ahead, None
    if ahead is None:
        return None
    try:
        return await ahead
    except TriggerfishError:
        return None  # the consumer's error: the poll that follows meets it and answers it


def _retrieve(task: asyncio.Future[Batch | None]) -> None:
    # an instance deleted or expired never awaits its read-ahead: do not log its error as unretrieved
    if not task.cancelled():
        task.exception()
