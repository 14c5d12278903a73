"""Partition bookkeeping (``esm/partitions.py``): buffers, positions, dispatch, leases, flow control."""

from __future__ import annotations

import threading

from esm_fakes import FakeClock, record, records
from triggerfish.esm.committer import Committer
from triggerfish.esm.partitions import (
    PAUSE_BATCHES,
    PAUSE_MAX_RECORDS,
    PAUSE_MIN_RECORDS,
    RESUME_LEAD_S,
    Partitions,
    filtered_record,
)

TP0, TP1 = ("orders", 0), ("orders", 1)
NONE = -1001  # librdkafka's OFFSET_INVALID: the group has no committed offset


def envelope(topic: str, partition: int) -> int:
    return 100


def tracker(batch_size: int = 3, window_s: float = 0.5, max_bytes: int = 6_291_456,
            stop: threading.Event | None = None, clock: FakeClock | None = None) -> Partitions:
    parts = Partitions(Committer(), batch_size, window_s, max_bytes=max_bytes,
                       stopping=(stop or threading.Event()).is_set, clock=(clock or FakeClock()).monotonic)
    parts.assign([TP0, TP1], {TP0: NONE, TP1: 7}, envelope)
    return parts


def test_assigned_partitions_are_owned_with_their_committed_offsets() -> None:
    parts = tracker()
    assert len(parts) == 2 and TP0 in parts and parts.tps() == [TP0, TP1]
    assert parts.committer.owns(TP0) and parts.committer.committed(TP1) == 7
    assert parts.committer.committed(TP0) is None


def test_a_batch_is_dispatched_once_full_and_committed_when_finished() -> None:
    parts = tracker()
    parts.accept(records(2), now=0.0)
    assert parts.dispatch(0.0) == []  # not full, window open
    parts.accept(records(2, start=2), now=0.1)
    (lease,) = parts.dispatch(0.1)
    assert parts.dispatch(0.1) == []  # one run per partition at a time
    taken = lease.take(0.1)
    assert taken is not None
    cut, commit_to = taken
    assert [r.offset for r in cut.records] == [0, 1, 2] and commit_to == 3
    assert lease.finish(commit_to)
    assert parts.committer.take() == {TP0: 3}
    assert lease.take(0.1) is None  # one record left: it waits for its window
    lease.release()
    assert lease.partition.in_flight is False
    (lease,) = parts.dispatch(0.7)  # the window of the last record closed
    assert [r.offset for r in lease.take(0.7)[0].records] == [3]  # type: ignore[index]


def test_the_poll_timeout_ends_when_a_window_closes() -> None:
    parts = tracker(window_s=0.5)
    assert parts.poll_timeout(0.0, 0.1) == 0.1
    parts.accept([record(0)], now=10.0)
    assert abs(parts.poll_timeout(10.45, 0.1) - 0.05) < 1e-9
    assert parts.poll_timeout(11.0, 0.1) == 0.0
    (lease,) = parts.dispatch(11.0)  # in flight: its window no longer shortens the poll
    assert parts.poll_timeout(11.0, 0.1) == 0.1
    lease.release()


def test_records_not_ours_revoking_or_seen_before_are_skipped() -> None:
    parts = tracker()
    parts.accept([record(0, partition=5), *records(2)], now=0.0)
    parts.accept(records(3), now=0.0)  # re-delivered after a pause: already buffered
    assert len(parts.get(TP0).buffer) == 3  # type: ignore[union-attr]
    assert parts.get(TP0).position == 3  # type: ignore[union-attr]
    parts.start_revoke([TP1])
    parts.accept(records(2, partition=1), now=0.0)
    assert len(parts.get(TP1).buffer) == 0  # type: ignore[union-attr]
    assert parts.dispatch(0.0) != [] and all(lease.partition.tp == TP0 for lease in parts.dispatch(9.0))


def test_filtered_records_move_the_position_and_are_committed_past() -> None:
    deltas: list[int] = []
    parts = Partitions(Committer(deltas.append), 3, 0.5)
    parts.assign([TP0], {TP0: NONE}, envelope)
    parts.accept([filtered_record("orders", 0, o) for o in range(10, 14)], now=0.0)
    assert len(parts.get(TP0).buffer) == 0  # type: ignore[union-attr]
    assert parts.dispatch(0.0) == []  # nothing to invoke
    assert parts.committer.take() == {TP0: 14}
    parts.committer.confirm(TP0, 14)
    assert deltas == [4]  # counted from the first offset read


def test_filtered_records_after_the_last_batch_are_committed_with_it() -> None:
    parts = tracker()
    parts.accept([*records(3), filtered_record("orders", 0, 3), filtered_record("orders", 0, 4)], now=0.0)
    (lease,) = parts.dispatch(0.0)
    cut, commit_to = lease.take(0.0)  # type: ignore[misc]
    assert len(cut.records) == 3 and commit_to == 5


def test_a_lease_ends_with_a_revoke_and_its_batch_can_no_longer_commit() -> None:
    parts = tracker()
    parts.accept(records(3), now=0.0)
    (lease,) = parts.dispatch(0.0)
    cut, commit_to = lease.take(0.0)  # type: ignore[misc]
    assert lease.current()
    revoked = parts.start_revoke([TP0])
    assert not lease.current()
    lease.advance({TP0: 2})  # a partial success during the revoke: not committed
    assert parts.committer.take() == {}
    assert lease.finish(commit_to)  # finished before the revoke completed: committed on revoke
    assert parts.committer.take() == {TP0: 3}
    lease.release()
    parts.wait_idle(revoked)
    parts.remove(revoked, [TP0])
    assert TP0 not in parts and not parts.committer.owns(TP0)
    assert not lease.finish(commit_to)  # removed: a late finish commits nothing


def test_a_reassigned_partition_does_not_take_commits_of_its_previous_assignment() -> None:
    parts = tracker()
    parts.accept(records(3), now=0.0)
    (old,) = parts.dispatch(0.0)
    old.take(0.0)
    revoked = parts.start_revoke([TP0])
    parts.remove(revoked, [TP0])
    parts.assign([TP0], {TP0: 0}, envelope)
    assert not old.current() and not old.finish(3)
    old.advance({TP0: 3})
    assert parts.committer.take() == {}
    assert parts.get(TP0).generation != old.generation  # type: ignore[union-attr]


def test_stopping_ends_every_lease() -> None:
    stop = threading.Event()
    parts = tracker(stop=stop)
    parts.accept(records(3), now=0.0)
    (lease,) = parts.dispatch(0.0)
    stop.set()
    assert not lease.current() and lease.take(0.0) is None


def test_a_revoke_waits_for_the_batch_in_flight_until_its_deadline() -> None:
    clock = FakeClock()
    parts = tracker(clock=clock)
    parts.accept(records(3), now=0.0)
    (lease,) = parts.dispatch(0.0)
    revoked = parts.start_revoke([TP0])
    parts.wait_idle(revoked, deadline=clock.now)  # the deadline passed: no wait
    assert lease.partition.in_flight
    threading.Timer(0.05, lease.release).start()
    parts.wait_idle(revoked, deadline=clock.now + 30)
    assert not lease.partition.in_flight
    parts.drain()  # nothing in flight: returns at once


def test_partitions_pause_above_eight_batches_and_resume_below_two() -> None:
    parts = tracker(batch_size=200)
    high = PAUSE_BATCHES * 200
    assert high > PAUSE_MIN_RECORDS
    parts.accept(records(high - 1), now=0.0)
    assert parts.flow() == ([], [])
    parts.accept([record(high - 1)], now=0.0)
    assert parts.flow() == ([TP0], [])
    assert parts.flow() == ([], [])  # paused once
    assert parts.pauses == 1
    (lease,) = parts.dispatch(0.0)
    while len(parts.get(TP0).buffer) >= high // 4:  # type: ignore[union-attr]
        assert parts.flow() == ([], [])  # still a backlog: stays paused
        lease.take(0.0)
    assert parts.flow() == ([], [TP0])
    assert parts.flow() == ([], [])


def test_small_batches_pause_at_the_record_floor_not_at_eight_records() -> None:
    parts = tracker(batch_size=1, window_s=0.0)
    parts.accept(records(PAUSE_MIN_RECORDS - 1), now=0.0)
    assert parts.flow() == ([], [])  # far more than 8 batches of 1, still fetching
    parts.accept([record(PAUSE_MIN_RECORDS - 1)], now=0.0)
    assert parts.flow() == ([TP0], [])
    (lease,) = parts.dispatch(0.0)
    while len(parts.get(TP0).buffer) >= PAUSE_MIN_RECORDS // 4:  # type: ignore[union-attr]
        assert parts.flow() == ([], [])
        lease.take(0.0)
    assert parts.flow() == ([], [TP0])
    assert parts.pauses == 1


def test_a_partition_that_drains_fast_resumes_while_its_buffer_lasts_and_pauses_at_twice_that() -> None:
    parts = tracker(batch_size=1, window_s=0.0)
    parts.accept(records(1500), now=0.0)
    assert parts.flow() == ([TP0], [])  # no drain rate yet: the floor pauses it
    (lease,) = parts.dispatch(0.0)
    for i in range(301):  # 2,000 records/s by the callers' clock
        assert lease.take(i / 2000) is not None
    lead = int(RESUME_LEAD_S * 2000)
    assert len(parts.get(TP0).buffer) < lead  # type: ignore[union-attr]
    assert parts.flow() == ([], [TP0])  # a quarter of the floor (250) would have waited for the buffer to run dry
    parts.accept(records(2 * lead - 1200, start=1500), now=0.2)  # 1,199 left after 301 taken
    assert len(parts.get(TP0).buffer) == 2 * lead - 1  # type: ignore[union-attr]
    assert parts.flow() == ([], [])
    parts.accept([record(2 * lead + 300)], now=0.2)
    assert parts.flow() == ([TP0], [])


def test_the_drain_rate_keeps_at_most_pause_max_records_buffered() -> None:
    parts = tracker(batch_size=1, window_s=0.0)
    parts.accept(records(PAUSE_MAX_RECORDS + 200), now=0.0)
    (lease,) = parts.dispatch(0.0)
    for i in range(101):  # a million records/s
        lease.take(i / 1_000_000)
    assert parts.flow() == ([TP0], [])  # PAUSE_MAX_RECORDS + 99 buffered
    while len(parts.get(TP0).buffer) >= PAUSE_MAX_RECORDS // 2:  # type: ignore[union-attr]
        assert parts.flow() == ([], [])
        lease.take(0.001)
    assert parts.flow() == ([], [TP0])


def test_partitions_pause_on_bytes_too() -> None:
    parts = tracker(batch_size=1000, max_bytes=1000)
    big = records(PAUSE_BATCHES * 1000 // 100 + 1)
    parts.accept(big, now=0.0)
    assert parts.get(TP0).buffer.bytes >= PAUSE_BATCHES * 1000  # type: ignore[union-attr]
    assert parts.flow() == ([TP0], [])


def test_runs_of_one_partition_number_in_two_topics_go_to_their_own_buffers() -> None:
    parts = Partitions(Committer(), 10, 0.5)
    parts.assign([("orders", 0), ("other", 0)], {("orders", 0): NONE, ("other", 0): NONE}, envelope)
    other = [r._replace(topic="other", size=0) for r in records(2, start=5)]
    parts.accept([*records(2), *other, record(2)], now=0.0)
    assert [r.offset for r in parts.get(("orders", 0)).buffer.records] == [0, 1, 2]  # type: ignore[union-attr]
    assert [r.offset for r in parts.get(("other", 0)).buffer.records] == [5, 6]  # type: ignore[union-attr]
    assert parts.get(("other", 0)).buffer.bytes == sum(r.json_size() for r in other)  # type: ignore[union-attr]
