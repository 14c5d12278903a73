"""The runner's shell (``esm/runner.py``) wired to fake factories: a consumer playing a script of polls,
scripted invokes, a destination that fails, a fake clock. Poll loop, rebalances, commits, flow control
and setup retries run as in production, without a broker.

Most tests run batches inline in the poll thread (``InlineExecutor``) so a run is deterministic; the
rebalance and backpressure tests use the real thread pool, as a batch must be in flight while polling.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError
from prometheus_client import REGISTRY

from esm_fakes import (
    ERROR,
    OK,
    FakeClock,
    FakeDestination,
    FakeSource,
    InlineExecutor,
    ScriptedInvoker,
    Step,
    assign,
    error_message,
    message,
    poll,
    revoke,
    until,
    wait_for,
)
from triggerfish.checks import Check
from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import ConfigError, SetupError, TriggerfishError
from triggerfish.esm import problems
from triggerfish.esm.auth import Auth
from triggerfish.esm.config import MAX_PAYLOAD_BYTES, MappingConfig
from triggerfish.esm.destinations import DESTINATION_UNREACHABLE
from triggerfish.esm.drive import TOO_LARGE
from triggerfish.esm.event import EventBuilder
from triggerfish.esm.partitions import PAUSE_MIN_RECORDS
from triggerfish.esm.retry import RETRY_ATTEMPTS_EXHAUSTED
from triggerfish.esm.runner import Factories, MappingRunner, thread_pool
from triggerfish.esm.state import ENABLED, ENABLING, MappingStatus
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime

TP0, TP1 = ("orders", 0), ("orders", 1)
DLQ = {"OnFailure": {"Destination": "kafka://orders-dlq"}}
SetupCheck = Callable[[MappingConfig], tuple[list[Check], Auth | None]]


def passing(mapping: MappingConfig) -> tuple[list[Check], Auth | None]:
    return [Check.of("tcp", "b1:9092", "ok")], Auth(["b1:9092"], {"bootstrap.servers": "b1:9092"})


class Harness:
    """A MappingRunner built from fakes; ``run()`` plays the script, waits until polls go idle and stops."""

    def __init__(self, *script: Step, invoker: ScriptedInvoker | None = None,
                 destination: FakeDestination | None = None, threads: bool = False, check: SetupCheck = passing,
                 commit_error: KafkaError | None = None, unsendable_commits: int = 0, **fields: Any) -> None:
        self.uuid = str(uuid.uuid4())
        self.clock = FakeClock()
        self.invoker = invoker or ScriptedInvoker()
        self.destination = destination
        self.script = list(script)
        self.sources: list[FakeSource] = []
        self.pools: list[Any] = []
        self.commit_error = commit_error
        self.unsendable_commits = unsendable_commits
        self.threads = threads
        self.mapping = MappingConfig.from_dict({
            "UUID": self.uuid, "FunctionName": "fn", "Topics": ["orders"], "StartingPosition": "TRIM_HORIZON",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b1:9092"]}}, **fields,
        })
        self.runtime = FunctionRuntime([FunctionConfig("fn", handler="h.handler", timeout=3)])
        self.status = MappingStatus()
        self.saved: list[tuple[str, str, str | None]] = []
        factories = Factories(check=check, source=self._source, pool=self._pool, destination=self._destination,
                              invoker=self._invoker)
        self.runner = MappingRunner(self.mapping, self.runtime, self.status, save_status=self._save,
                                    factories=factories, clock=self.clock)

    def _save(self) -> None:
        problem = self.status.problem
        self.saved.append((self.status.state, self.status.state_transition_reason, problem and problem.problem))

    def _source(self, settings: dict[str, Any], mapping: MappingConfig, **callbacks: Any) -> FakeSource:
        script, self.script = self.script, []  # a second consumer (after a re-setup) only idles
        source = FakeSource(script, self.clock, settings, commit_error=self.commit_error,
                            unsendable_commits=self.unsendable_commits, **callbacks)
        self.sources.append(source)
        return source

    def _pool(self, workers: int, name: str) -> Any:
        pool = thread_pool(workers, name) if self.threads else InlineExecutor()
        self.pools.append(pool)
        return pool

    def _destination(self, target: str, config: Any) -> FakeDestination:
        assert target == "kafka://orders-dlq" and config == {"bootstrap.servers": "b1:9092"}
        assert self.destination is not None
        return self.destination

    def _invoker(self, runtime: FunctionRuntime, function: str, builder: EventBuilder, *,
                 parse_response: bool) -> ScriptedInvoker:
        assert runtime is self.runtime and function == "fn"
        return self.invoker

    @property
    def source(self) -> FakeSource:
        return self.sources[0]

    def run(self, idle: Callable[[], bool] = lambda: True, quiet: float = 3.0) -> FakeSource:
        """Start, wait until the script is played and polls were idle for ``quiet`` fake seconds, stop."""
        self.runner.start()
        try:
            until(lambda: bool(self.sources) and self.sources[-1].idle_for() >= quiet and idle())
        finally:
            assert self.runner.stop(10)
        assert self.runner.error is None
        return self.source

    def metric(self, name: str) -> float:
        return REGISTRY.get_sample_value(f"triggerfish_esm_{name}", {"uuid": self.uuid, "function": "fn"}) or 0.0


def messages(offsets: range, partition: int = 0, value: bytes = b'{"kind": "keep"}') -> list[Any]:
    return [message(o, value, partition) for o in offsets]


def test_polled_records_are_invoked_per_partition_and_committed() -> None:
    h = Harness(assign(TP0, TP1), poll(*messages(range(5)), *messages(range(3), partition=1)), BatchSize=5)
    source = h.run()
    assert h.invoker.calls == [[0, 1, 2, 3, 4], [0, 1, 2]]  # a full batch at once, the other when its window closed
    assert source.committed == {TP0: 5, TP1: 3}
    assert all(asynchronous for _, asynchronous in source.commits)  # paced asynchronous commits, answered
    assert source.settings["group.id"] == h.uuid and source.settings["enable.auto.commit"] is False
    assert source.closed and h.pools[0].shut_down
    assert h.status.state == ENABLED and h.status.last_processing_result == "OK"
    assert [s["stage"] for s in h.status.stages] == ["tcp", "first_poll", "first_invoke"]
    assert h.status.stages[1]["detail"] == f"joined group {h.uuid}; assigned 2 partition(s)"
    ps = h.status.partition(*TP0)
    assert ps.committed == 5 and ps.high_watermark == 100 and not ps.assigned  # revoked on close
    assert h.metric("invoked_events_total") == 8 and h.metric("committed_events_total") == 8
    assert h.metric("polled_events_total") == 8


def test_a_record_waits_for_the_batching_window() -> None:
    h = Harness(assign(TP0), poll(*messages(range(2))), MaximumBatchingWindowInSeconds=2)
    h.run(idle=lambda: bool(h.invoker.calls))
    assert h.invoker.calls == [[0, 1]]
    assert h.clock.now - 1000.0 >= 2.0  # the fake clock moved through the window, polls waited no longer
    assert max(h.sources[0].timeouts) <= 0.1


FILTER = {"Filters": [{"Pattern": json.dumps({"value": {"kind": ["keep"]}})}]}


def test_filtered_records_are_not_invoked_and_their_offsets_are_committed() -> None:
    keep, drop = b'{"kind": "keep"}', b'{"kind": "drop"}'
    h = Harness(assign(TP0), poll(*[message(o, drop) for o in range(4)]),
                poll(message(4, keep), message(5, drop), message(6, drop)), FilterCriteria=FILTER, BatchSize=1)
    source = h.run()
    assert h.invoker.calls == [[4]]
    assert source.committed == {TP0: 7}
    assert h.metric("filtered_out_events_total") == 6 and h.metric("committed_events_total") == 7


def test_records_given_up_on_go_to_the_destination_which_is_closed_at_the_end() -> None:
    destination = FakeDestination()
    h = Harness(assign(TP0), poll(*messages(range(3))), invoker=ScriptedInvoker((ERROR,)), destination=destination,
                BatchSize=3, MaximumRetryAttempts=1, DestinationConfig=DLQ)
    source = h.run()
    (sent, failure, origin, event), = destination.sent
    assert [r.offset for r in sent] == [0, 1, 2]
    assert failure.condition == RETRY_ATTEMPTS_EXHAUSTED and failure.invoke_count == 2
    assert failure.function_arn == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert origin.bootstrap_servers == "b1:9092" and origin.mapping_uuid == h.uuid
    assert isinstance(event, bytes) and b'"orders-0"' in event
    assert source.committed == {TP0: 3} and destination.closed
    assert h.clock.sleeps == [0.1]


def test_the_on_failure_record_names_the_function_arn_given_or_a_default() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:fn"
    d1 = FakeDestination()
    h = Harness(assign(TP0), poll(*messages(range(1))), invoker=ScriptedInvoker((ERROR,)), destination=d1,
                FunctionName=arn, MaximumRetryAttempts=0, DestinationConfig=DLQ)
    h.run()
    assert d1.sent[0][1].function_arn == arn
    d2 = FakeDestination()
    h = Harness(assign(TP0), poll(*messages(range(1))), invoker=ScriptedInvoker((ERROR,)), destination=d2,
                MaximumRetryAttempts=0, DestinationConfig=DLQ)
    h.invoker.before = lambda n: h.runtime.remove("fn")  # the function was deleted while its batch failed
    h.run()
    assert d2.sent[0][1].function_arn == "arn:aws:lambda:us-east-1:000000000000:function:fn"


def test_nothing_is_committed_while_the_destination_is_unreachable() -> None:
    destination = FakeDestination(fail=-1)
    h = Harness(assign(TP0), poll(*messages(range(2))), invoker=ScriptedInvoker((ERROR,)), destination=destination,
                MaximumRetryAttempts=0, DestinationConfig=DLQ)
    tried = threading.Event()
    destination.on_send = lambda: (destination.attempts >= 5 and tried.set(), tried.wait(0.001))
    h.runner.start()
    assert tried.wait(10)
    assert h.status.problem is not None and h.status.problem.problem == DESTINATION_UNREACHABLE
    assert h.runner.stop(10)
    assert h.source.commits == [] and destination.sent == []
    assert h.clock.sleeps[:4] == [0.1, 0.2, 0.4, 0.8]
    assert h.metric("on_failure_destination_delivery_errors_total") >= 5


def test_a_record_too_large_for_a_payload_is_skipped_and_committed_past() -> None:
    huge = b"x" * MAX_PAYLOAD_BYTES
    h = Harness(assign(TP0), poll(message(0, huge), *messages(range(1, 3))), BatchSize=3)
    problems_at_invoke: list[str | None] = []
    h.invoker.before = lambda n: problems_at_invoke.append(h.status.problem and h.status.problem.problem)
    source = h.run()
    assert h.invoker.calls == [[1, 2]] and problems_at_invoke == [TOO_LARGE]
    assert source.committed == {TP0: 3} and h.metric("dropped_events_total") == 1


def test_a_batch_revoked_during_its_retry_is_abandoned_uncommitted() -> None:
    release = threading.Event()
    invoker = ScriptedInvoker((ERROR,))
    invoker.before = lambda n: n >= 2 and release.wait(10)  # the retry is in flight when the revoke comes

    def revoke_while_in_flight(source: FakeSource) -> Sequence[Any]:
        threading.Timer(0.1, release.set).start()
        return revoke(TP0)(source)

    h = Harness(assign(TP0), poll(*messages(range(3))), wait_for(lambda: len(invoker.calls) >= 2),
                revoke_while_in_flight, invoker=invoker, threads=True, BatchSize=3)
    source = h.run()
    assert invoker.calls == [[0, 1, 2], [0, 1, 2]]  # no retry after the revoke
    assert source.commits == [] and TP0 not in source.committed
    assert not h.status.partition(*TP0).assigned and len(h.runner._parts) == 0


def test_a_batch_finishing_during_a_revoke_is_committed_before_the_partition_goes() -> None:
    release = threading.Event()
    invoker = ScriptedInvoker((OK,))
    invoker.before = lambda n: release.wait(10)

    def revoke_while_in_flight(source: FakeSource) -> Sequence[Any]:
        threading.Timer(0.1, release.set).start()
        return revoke(TP0)(source)

    h = Harness(assign(TP0), poll(*messages(range(3))), wait_for(lambda: len(invoker.calls) >= 1),
                revoke_while_in_flight, invoker=invoker, threads=True, BatchSize=3)
    source = h.run()
    assert source.commits == [({TP0: 3}, False)]  # synchronously, inside the revoke


def test_partitions_are_paused_when_their_backlog_is_large_and_resumed_when_drained() -> None:
    release = threading.Event()
    invoker = ScriptedInvoker((OK,))
    invoker.before = lambda n: release.wait(10)  # the first batch is slow: the backlog grows

    def unblock(source: FakeSource) -> Sequence[Any]:
        assert source.paused == [[TP0]]
        release.set()
        return []

    # BatchSize 2: eight batches are 16 records, below the floor of PAUSE_MIN_RECORDS (1000) that pauses
    end = 2 + PAUSE_MIN_RECORDS
    h = Harness(assign(TP0), poll(*messages(range(2))), wait_for(lambda: len(invoker.calls) >= 1),
                poll(*messages(range(2, end))), unblock, invoker=invoker, threads=True, BatchSize=2)
    source = h.run(idle=lambda: bool(h.sources[0].resumed) and h.sources[0].committed.get(TP0) == end)
    assert source.paused == [[TP0]] and source.resumed == [[TP0]]  # 1000 buffered; resumed below 250
    assert h.runner.pauses == 1
    assert len(invoker.calls) == end // 2 and source.committed == {TP0: end}


def test_setup_is_retried_with_backoff_until_its_stages_pass() -> None:
    failed = Check.of("tcp", "b1:9092", "fail", problems.CONNECTION_ERROR, "connection refused", "open it")
    answers = [([failed], None), ([failed], None)]

    def check(mapping: MappingConfig) -> tuple[list[Check], Auth | None]:
        return answers.pop(0) if answers else passing(mapping)

    h = Harness(assign(TP0), check=check)
    h.run()
    assert h.clock.sleeps == [1.0, 2.0]
    reason = problems.reason_for(problems.CONNECTION_ERROR)
    assert h.saved[:2] == [(ENABLING, reason, problems.CONNECTION_ERROR)] * 2
    assert h.saved[2] == (ENABLED, "USER_INITIATED", None)
    assert h.status.problem is None and [s["stage"] for s in h.status.stages] == ["tcp", "first_poll"]


def test_setup_errors_become_problems_of_their_stage() -> None:
    errors: list[BaseException] = [SetupError(Diagnosis(problems.CONNECTION_ERROR, "no such secret", "create it", stage="secret")),
                                   ConfigError("KAFKA_BOOTSTRAP_SERVERS", "'b1' is not host:port"),
                                   TriggerfishError("the broker said no"), RuntimeError("surprise")]
    seen: list[tuple[str, str]] = []

    def check(mapping: MappingConfig) -> tuple[list[Check], Auth | None]:
        if h.status.problem is not None:
            seen.append((h.status.problem.stage, h.status.problem.problem))
        if errors:
            raise errors.pop(0)
        return passing(mapping)

    h = Harness(check=check)
    h.run()
    assert seen == [("secret", problems.CONNECTION_ERROR), ("config", problems.CONNECTION_ERROR),
                    ("setup", problems.CONNECTION_ERROR), ("setup", problems.INTERNAL)]
    assert h.clock.sleeps == [1.0, 2.0, 4.0, 8.0]


def test_stopping_while_setup_fails_ends_the_runner_without_a_consumer() -> None:
    failed = Check.of("dns", "b1:9092", "fail", problems.CONNECTION_ERROR, "no such host")

    def check(mapping: MappingConfig) -> tuple[list[Check], Auth | None]:
        time.sleep(0.001)
        return [failed], None

    h = Harness(check=check)
    h.runner.start()
    until(lambda: len(h.clock.sleeps) >= 3)
    assert h.runner.stop(10) and not h.runner.running
    assert h.sources == [] and h.status.state == ENABLING
    assert h.clock.sleeps[:3] == [1.0, 2.0, 4.0]


def test_a_login_failure_while_polling_runs_setup_again() -> None:
    checks: list[int] = []

    def check(mapping: MappingConfig) -> tuple[list[Check], Auth | None]:
        checks.append(1)
        return passing(mapping)

    sasl = error_message(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed")
    h = Harness(assign(TP0), poll(sasl), check=check)
    h.run(idle=lambda: len(h.sources) == 2)
    assert len(checks) == 2 and len(h.sources) == 2
    assert h.sources[0].closed and h.pools[0].shut_down
    assert h.metric("polling_errors_total") == 1


def test_consumer_errors_are_counted_and_the_ones_about_setup_diagnosed() -> None:
    denied = error_message(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed")
    transient = error_message(KafkaError._TRANSPORT, "Connection refused")
    h = Harness(assign(TP0), poll(transient, *messages(range(2))), poll(denied), FilterCriteria=FILTER, BatchSize=2)
    h.run()
    assert h.status.problem is not None and h.status.problem.stage == "poll"
    assert h.status.problem.problem == problems.AUTHORIZATION and "topic 'orders'" in h.status.problem.detail
    assert h.metric("polling_errors_total") == 2
    h.runner._client_error(object())  # not a KafkaError: ignored
    assert h.metric("polling_errors_total") == 2
    g = Harness(assign(TP0), poll(transient, *messages(range(2)), transient))
    g.run()
    assert g.metric("polling_errors_total") == 2 and g.invoker.calls == [[0, 1]]


@pytest.mark.parametrize(("code", "counted"), [(KafkaError.REBALANCE_IN_PROGRESS, 1), (KafkaError._NO_OFFSET, 0),
                                               (KafkaError.COORDINATOR_NOT_AVAILABLE, 1)])
def test_a_refused_commit_is_committed_again(code: int, counted: int) -> None:
    h = Harness(assign(TP0), poll(*messages(range(5))), commit_error=KafkaError(code), BatchSize=5)
    source = h.run()
    assert [c for c in source.commits if c[0]] == [({TP0: 5}, True), ({TP0: 5}, True)]
    assert source.committed == {TP0: 5} and h.status.partition(*TP0).committed == 5
    assert h.metric("commit_errors_total") == counted


def test_a_commit_that_cannot_be_sent_is_retried() -> None:
    h = Harness(assign(TP0), poll(*messages(range(2))), unsendable_commits=1, BatchSize=2)
    source = h.run()
    assert source.commits == [({TP0: 2}, True)] and source.committed == {TP0: 2}
    assert h.metric("commit_errors_total") == 1


def test_an_unexpected_error_stops_the_mapping_with_an_internal_problem() -> None:
    h = Harness()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no invoker today")

    h.runner.factories = Factories(check=passing, source=h._source, pool=h._pool, invoker=broken)
    h.runner.start()
    until(lambda: not h.runner.running)
    assert isinstance(h.runner.error, RuntimeError)
    assert h.status.problem is not None and h.status.problem.problem == problems.INTERNAL
    assert h.saved[-1][2] == problems.INTERNAL


def test_a_batch_that_fails_unexpectedly_is_read_again_and_nothing_past_it_is_committed() -> None:
    # An invoke that raises (a bug in triggerfish, not a function error) loses the batch's place in the buffer:
    # no later batch of that partition may commit past it; the consumer reads again from the committed offset.
    def answer(batch: Sequence[Any]) -> Any:
        if len(h.invoker.calls) == 1:
            raise RuntimeError("surprise")
        return OK

    def second_consumer(source: FakeSource) -> Sequence[Any]:
        h.script = [assign(TP0), poll(*messages(range(6)))]
        return []

    h = Harness(assign(TP0), second_consumer, poll(*messages(range(6))), invoker=ScriptedInvoker(answer), BatchSize=2)
    h.run(idle=lambda: len(h.sources) == 2)
    first, second = h.sources
    assert first.committed.get(TP0, 0) == 0 and first.closed
    assert h.invoker.calls == [[0, 1], [0, 1], [2, 3], [4, 5]]
    assert second.committed == {TP0: 6}
    assert any(p == problems.INTERNAL for _, _, p in h.saved)
