"""One poll's records: the Kafka messages, the JSON body that answers them, and their offsets.

A batch is handed to the client (its offsets stored: consumers run with ``enable.auto.offset.store``
off, so auto-commit and a commit without offsets cover only records some answer held) or given back
(each partition rewound to its first offset in the batch) when it is refused or a read-ahead batch is
not wanted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from triggerfish.bridge.consumed_json import poll_body, stdlib_body
from triggerfish.bridge.formats import Format, record_json, records_json
from triggerfish.bridge.schema_formats import RecordDecoders
from triggerfish.errors import TriggerfishError, UnprocessableError

#: A Kafka error of a polled message as the bridge's error: (the error, the message's topic or "").
KafkaProblem = Callable[[KafkaError, str], TriggerfishError]


@dataclass(slots=True)
class Batch:
    """The messages of one poll (confluent-kafka ``Message``s) and their answer."""

    msgs: list[Any]
    body: bytes
    count: int
    #: Whether the poll filled ``max.poll.records`` (more are likely waiting).
    full: bool
    #: The offset after each partition's last record: what to store once the batch is answered. Worked
    #: out with the answer (for a batch read ahead, before the poll that hands it over).
    stores: list[TopicPartition]

    def firsts(self) -> list[TopicPartition]:
        """Each partition's first offset in the batch: where to rewind to give it back."""
        first: dict[tuple[str, int], int] = {}
        for m in self.msgs:
            if m.error() is None:
                first.setdefault((m.topic(), m.partition()), m.offset())
        return [TopicPartition(t, p, o) for (t, p), o in first.items()]


def _nexts(msgs: list[Any]) -> list[TopicPartition]:
    last = {(m.topic(), m.partition()): m.offset() for m in msgs if m.error() is None}
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def answer(fmt: Format, decoders: RecordDecoders | None, msgs: list[Any], full: bool,
           kafka_problem: KafkaProblem, max_bytes: int | None = None) -> tuple[Batch, TriggerfishError | None]:
    """The batch of ``msgs``, and the first reason it cannot be the answer (an error or a record refused)."""
    out: list[dict[str, Any]] = []
    problem: TriggerfishError | None = None
    one_by_one: Sequence[Any] = msgs
    if decoders is None and not any(m.error() for m in msgs):
        try:
            out, one_by_one = records_json(fmt, msgs), ()
        except TriggerfishError:
            pass  # the one-at-a-time path below finds that record again
    for m in one_by_one:
        err = m.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                problem = problem or kafka_problem(err, m.topic() or "")
            continue
        if problem is not None:
            continue
        decode = None if decoders is None else decoders(m.topic(), m.partition(), m.offset())
        try:
            out.append(record_json(fmt, m.topic(), m.key(), m.value(), m.partition(), m.offset(),
                                   m.timestamp()[1], m.headers(), decode))
        except TriggerfishError as exc:  # a record the consumer's format cannot show, or the registry down
            problem = exc
    body = poll_body(out) if decoders is None else stdlib_body(out)
    batch = Batch(msgs, body, len(out), full, _nexts(msgs) if out else [])
    return batch, problem or too_large(batch, max_bytes)


def too_large(batch: Batch, max_bytes: int | None) -> TriggerfishError | None:
    if max_bytes is not None and len(batch.body) > max_bytes:
        return UnprocessableError("Response exceeds the maximum number of bytes the consumer can receive")
    return None
