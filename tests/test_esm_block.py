"""A partition's records as columns (``esm/block.py``): cut into batches, packed for a worker, committed."""

from __future__ import annotations

import json
import random

from triggerfish.esm.batcher import PartitionBuffer
from triggerfish.esm.block import Block, blocks_of, concat, flat
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.esm.retry import commit_positions
from triggerfish.functions.batch import pack_parts, unpack_event


class _Msg:
    """What ``blocks_of`` reads of a confluent_kafka.Message."""

    def __init__(self, partition: int, offset: int, key: bytes | None, value: bytes | None, ts_type: int = 1) -> None:
        self._p, self._o, self._k, self._v, self._t = partition, offset, key, value, (ts_type, 1_700_000_000_000 + offset)

    def topic(self) -> str: return "orders"  # noqa: E704
    def partition(self) -> int: return self._p  # noqa: E704
    def offset(self) -> int: return self._o  # noqa: E704
    def timestamp(self) -> tuple[int, int]: return self._t  # noqa: E704
    def key(self) -> bytes | None: return self._k  # noqa: E704
    def value(self) -> bytes | None: return self._v  # noqa: E704
    def headers(self) -> None: return None  # noqa: E704


def _block(first: int, count: int, rng: random.Random, ts_type: int = 1) -> Block:
    messages = [_Msg(0, first + i, rng.choice([None, b"k", str(i).encode()]),
                     rng.choice([None, b"", b"v" * rng.choice([1, 100, 1500])]), ts_type) for i in range(count)]
    (block,) = blocks_of(messages) or [None]
    assert isinstance(block, Block)
    return block


def test_a_poll_of_several_partitions_is_a_block_per_run_in_poll_order() -> None:
    messages = [_Msg(p, o, None, b"v") for p, o in [(0, 5), (0, 6), (2, 1), (1, 9), (1, 10), (0, 7)]]
    blocks = blocks_of(messages)
    assert blocks is not None
    assert [(b.partition, b.offsets) for b in blocks] == [(0, [5, 6]), (2, [1]), (1, [9, 10]), (0, [7])]
    assert [r.offset for r in flat(blocks)] == [5, 6, 1, 9, 10, 7]
    assert all(r.partition == b.partition for b in blocks for r in b)


def test_batches_cut_from_blocks_and_lists_hold_every_record_once_in_order_within_the_limits() -> None:
    rng = random.Random(11)
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    for batch_size, max_bytes in [(1, 6_291_456), (7, 6_291_456), (50, 6_291_456), (10, 5_000), (500, 20_000)]:
        buf = PartitionBuffer(batch_size, 1.0, builder.envelope_size("orders", 0), max_bytes)
        polled: list[Record] = []
        offset = 0
        for _ in range(12):  # blocks of various sizes, now and then records one by one (a filter, headers)
            if rng.random() < 0.25:
                for _ in range(rng.randrange(1, 5)):
                    r = Record("orders", 0, offset, 5, "CREATE_TIME", None, b"x" * rng.choice([3, 900]))
                    buf.add(r, 0.0)
                    polled.append(r)
                    offset += 1
            else:
                b = _block(offset, rng.randrange(1, 40), rng, ts_type=rng.choice([1, 1, 2]))
                polled += [b[i] for i in range(len(b))]  # (not b.records(): a block whose records were built stays apart)
                buf.extend(b, 0.0, b.size)
                offset += len(b)
        assert len(buf) == len(polled) and buf.bytes == sum(r.json_size() for r in polled)
        taken: list[Record] = []
        while len(buf):
            cut = buf.take(0.0)
            records = list(cut.records)
            assert records == polled[len(taken):len(taken) + len(records)]
            assert 1 <= len(records) <= batch_size
            if not cut.oversized:
                assert builder.size(records) <= max_bytes
            if isinstance(cut.records, Block):
                assert commit_positions(cut.records) == {("orders", 0): records[-1].offset + 1}
            taken += records
            assert buf.bytes == sum(r.json_size() for r in buf.records)
        assert taken == polled


def test_a_block_packed_for_a_worker_gives_the_event_lambda_sends() -> None:
    rng = random.Random(3)
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    for blocks in ([_block(0, 30, rng)], [_block(0, 10, rng), _block(10, 1, rng, ts_type=2), _block(11, 5, rng)],
                   [_block(40, 1, rng)], [_block(0, 10, rng), _block(25, 5, rng)]):  # (a gap: compaction)
        batch = concat(blocks)
        records = batch.records()
        expected = json.loads(builder.build(records))
        assert unpack_event(b"".join(pack_parts(builder.envelope, batch))) == expected
        assert unpack_event(b"".join(pack_parts(builder.envelope, records))) == expected
        assert isinstance(batch.types, str) == (len({r.timestamp_type for r in records}) == 1)


def test_a_buffer_never_appends_to_a_list_it_was_given() -> None:
    buf = PartitionBuffer(10, 1.0, 100)
    given = [Record("orders", 0, 0, 5, "CREATE_TIME", None, b"a")]
    buf.extend(given, 0.0)
    buf.add(Record("orders", 0, 1, 5, "CREATE_TIME", None, b"b"), 0.0)
    assert len(given) == 1 and [r.offset for r in buf.take(0.0).records] == [0, 1]


def test_packed_parts_know_their_length() -> None:
    rng = random.Random(9)
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    for batch in (_block(0, 40, rng), _block(7, 1, rng), _block(0, 40, rng).records(), _block(3, 1, rng).records()):
        parts = pack_parts(builder.envelope, batch)
        assert parts.nbytes == sum(map(len, parts))


def test_a_buffer_fills_its_last_block_up_to_a_batch_so_the_batch_is_cut_whole() -> None:
    rng = random.Random(5)
    buf = PartitionBuffer(1000, 1.0, 100)
    blocks = [_block(300 * i, 300, rng) for i in range(4)]
    expected = [r for b in blocks for r in [b[i] for i in range(len(b))]]
    first = blocks[0]
    for b in blocks:
        buf.extend(b, 0.0, b.size)
    cut = buf.take(0.0)
    assert cut.records is first and len(first) == 1000  # the first block, filled from the next ones: no copy
    assert list(cut.records) == expected[:1000]
    assert len(buf) == 200 and list(buf.take(0.0).records) == expected[1000:]
    assert [len(b) for b in blocks[1:]] == [300, 300, 300]  # the blocks it was filled from are as they were
