"""Offset bookkeeping's commit deltas (Lambda's CommittedEventCount): counted from the previous commit,
or from the first offset read when the group had none; never backwards, never twice."""

from __future__ import annotations

from triggerfish.esm.committer import Committer

TP = ("orders", 0)


def test_deltas_count_from_the_previous_commit() -> None:
    deltas: list[int] = []
    c = Committer(deltas.append)
    c.own([TP], {TP: 5})
    c.advance(TP, 12)
    assert c.take() == {TP: 12}
    c.confirm(TP, 12)
    c.confirm(TP, 12)  # the same commit confirmed twice (callback and sync path) counts once
    c.confirm(TP, 9)  # a late confirmation of an older commit moves nothing
    assert deltas == [7]
    assert c.committed(TP) == 12 and c.take() == {}


def test_first_commit_of_a_new_group_counts_from_the_first_offset_read() -> None:
    deltas: list[int] = []
    c = Committer(deltas.append)
    c.own([TP], {TP: -1001})  # no committed offset yet (librdkafka's OFFSET_INVALID)
    c.start(TP, 40)  # e.g. LATEST: the first record read is at 40
    c.start(TP, 45)  # only the first one counts
    c.advance(TP, 50)
    c.confirm(TP, 50)
    assert deltas == [10]


def test_forgotten_partitions_start_over() -> None:
    deltas: list[int] = []
    c = Committer(deltas.append)
    c.own([TP])
    c.start(TP, 0)
    c.confirm(TP, 4)
    c.forget([TP])
    c.own([TP], {TP: 10})  # reassigned later; another member committed meanwhile
    c.confirm(TP, 13)
    assert deltas == [4, 3]
