"""Polls of a consumer instance: answered on the event loop when records are waiting, and read ahead.

A poll first takes the records librdkafka already holds (``Registry.ready``, which never blocks): a
full batch (``max.poll.records``) is answered at once, with no thread hand-off; otherwise a worker
thread waits for more, up to the poll's timeout. After a full batch is answered, the next one is read
and turned into its answer on the event loop right away, while the client reads this one, so that the
client's next poll finds it ready.

A batch read ahead is not handed over until a poll answers it, so its offsets are not stored, and
neither auto-commit nor a commit without offsets covers it. Operations that move the instance's
positions (subscribe, assign, seek, unsubscribe) first give it back (``settle``): its partitions are
rewound. Whoever takes a batch out of ``Instance.ahead`` (one step on the event loop) answers it or
gives it back, so none is lost; a poll that waits for records holds up neither a settle nor a delete.
"""

from __future__ import annotations

import asyncio

from triggerfish.bridge.batches import Batch, too_large
from triggerfish.bridge.consumers import Registry
from triggerfish.bridge.executor import Executor
from triggerfish.bridge.instance import Instance
from triggerfish.errors import TriggerfishError


async def poll(registry: Registry, executor: Executor, inst: Instance, timeout_ms: int, max_bytes: int | None) -> Batch:
    """The answer to ``GET .../records``, handed over (offsets stored)."""
    batch = _take_ahead(inst) or registry.ready(inst)
    if batch is None or not batch.full:
        batch = await executor.run(registry.fetch, inst, timeout_ms, max_bytes, batch)
    else:
        problem = too_large(batch, max_bytes)
        if problem is not None:
            await executor.run(registry.give_back, inst, batch)
            raise problem
    registry.hand_over(inst, batch)
    if batch.full and inst.ahead_call is None:
        # the next loop turn: after this answer is written, before the client's next request arrives
        inst.ahead_call = asyncio.get_running_loop().call_soon(_read_ahead, registry, inst)
    return batch


async def settle(registry: Registry, executor: Executor, inst: Instance, give_back: bool = True) -> None:
    """Before an operation that moves the instance's positions (or, ``give_back=False``, closes it):
    the batch read ahead, if any, is rewound (or dropped)."""
    batch = _take_ahead(inst)
    if batch is not None and give_back:
        await executor.run(registry.give_back, inst, batch)


def _read_ahead(registry: Registry, inst: Instance) -> None:
    inst.ahead_call = None
    if inst.ahead is None:
        try:
            inst.ahead = registry.ready(inst)
        except TriggerfishError:
            pass  # the consumer's error: the next poll meets it and answers it


def _take_ahead(inst: Instance) -> Batch | None:
    if inst.ahead_call is not None:
        inst.ahead_call.cancel()
        inst.ahead_call = None
    batch, inst.ahead = inst.ahead, None
    return batch
