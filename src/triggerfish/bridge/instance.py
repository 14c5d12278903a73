"""A consumer instance created over HTTP: its Kafka consumer, subscription or assignment, and poll state.

``consumers.Registry`` creates, finds and closes them; ``read_ahead`` keeps the batch read for the next poll.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from triggerfish.bridge.batches import Batch
from triggerfish.bridge.formats import Format
from triggerfish.bridge.schema_formats import RecordDecoders


@dataclass
class Instance:
    """One consumer instance created over HTTP."""

    group: str
    name: str
    format: Format
    consumer: Consumer
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    topics: list[str] = field(default_factory=list)
    pattern: str | None = None
    assigned: list[TopicPartition] = field(default_factory=list)
    closed: bool = False
    closing: bool = False
    #: The key/value decoders of a registry format (avro, protobuf, jsonschema), per record.
    decoders: RecordDecoders | None = None
    #: Records returned to HTTP so far, when the last poll ended, and the commits' count, total and
    #: longest seconds (for the Java consumer's metrics).
    consumed: int = 0
    last_poll: float | None = None
    commits: tuple[int, float, float] = (0, 0.0, 0.0)
    #: The next poll's batch, read ahead (``read_ahead``), or the call about to read it.
    ahead: Batch | None = None
    ahead_call: asyncio.Handle | None = None

    @property
    def subscribed(self) -> bool:
        return bool(self.topics) or self.pattern is not None

    def touch(self) -> None:
        self.last_used = time.monotonic()


def first_topic(inst: Instance) -> str:
    """The topic an error of the instance names when no record says which."""
    if inst.topics:
        return inst.topics[0]
    if inst.assigned:
        return inst.assigned[0].topic
    return inst.pattern or ""
