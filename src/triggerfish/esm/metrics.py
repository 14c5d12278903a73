"""Lambda's event source mapping metrics (``MetricsConfig``) as Prometheus metrics.

Lambda publishes three groups per mapping (lambda-kafka-esm.md §5.8): ``EventCount``,
``ErrorCount`` and ``KafkaMetrics``. Here each is a metric in prometheus-client's default registry
(the control API's ``/metrics`` serves it), named ``triggerfish_esm_<snake_case>`` and labelled with
the mapping's UUID and function name; the HELP text names the Lambda metric.

    metrics = MappingMetrics(uuid, "orders")
    metrics.polled(500, filtered=20)          # once per poll, not per record
    metrics.invoked(100, failed=True)         # once per invoke; a retry counts its records again

The runner calls these at the points where it already decides what happens to records; each call
is an ``inc`` on a child bound to the labels up front, so the hot path pays one per batch, not per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge

_LABELS = ("uuid", "function")
_PREFIX = "triggerfish_esm_"


def _counter(name: str, lambda_name: str, meaning: str) -> Counter:
    return Counter(_PREFIX + name, f"Lambda {lambda_name}: {meaning}", _LABELS)


# -- EventCount --------------------------------------------------------------------------------
_POLLED = _counter("polled_events", "PolledEventCount", "records polled from Kafka.")
_FILTERED_OUT = _counter("filtered_out_events", "FilteredOutEventCount", "records dropped by FilterCriteria.")
_INVOKED = _counter("invoked_events", "InvokedEventCount", "records sent to the function; retries count again.")
_FAILED_INVOKE = _counter("failed_invoke_events", "FailedInvokeEventCount",
                         "records in failed invokes, including invokes with non-empty batchItemFailures.")
_DROPPED = _counter("dropped_events", "DroppedEventCount",
                   "records given up on (record age, retries exhausted, too large) without an on-failure destination.")
_DESTINATION_DELIVERED = _counter("on_failure_destination_delivered_events", "OnFailureDestinationDeliveredEventCount",
                                 "records delivered to the on-failure destination.")
_COMMITTED = _counter("committed_events", "CommittedEventCount", "sum of the deltas of committed offsets.")
# -- ErrorCount --------------------------------------------------------------------------------
_POLLING_ERRORS = _counter("polling_errors", "PollingErrorCount", "errors reported by the Kafka consumer while polling.")
_INVOKE_ERRORS = _counter("invoke_errors", "InvokeErrorCount", "failed invokes (counted per batch).")
_DESTINATION_ERRORS = _counter("on_failure_destination_delivery_errors", "OnFailureDestinationDeliveryErrorCount",
                              "failed attempts to deliver records to the on-failure destination.")
_COMMIT_ERRORS = _counter("commit_errors", "CommitErrorCount", "failed offset commits.")
_SCHEMA_REGISTRY_ERRORS = _counter("schema_registry_errors", "SchemaRegistryErrorCount",
                                  "records that could not be decoded with the schema registry (SCHEMA_NOT_FOUND, "
                                  "DESERIALIZATION_ERROR).")
# -- KafkaMetrics ------------------------------------------------------------------------------
_MAX_OFFSET_LAG = Gauge(_PREFIX + "max_offset_lag", "Lambda MaxOffsetLag: the largest lag (log end offset minus "
                       "committed offset) of the mapping's assigned partitions.", _LABELS)
_SUM_OFFSET_LAG = Gauge(_PREFIX + "sum_offset_lag", "Lambda SumOffsetLag: the lag summed over the mapping's "
                       "assigned partitions.", _LABELS)

_ALL = (_POLLED, _FILTERED_OUT, _INVOKED, _FAILED_INVOKE, _DROPPED, _DESTINATION_DELIVERED, _COMMITTED,
        _POLLING_ERRORS, _INVOKE_ERRORS, _DESTINATION_ERRORS, _COMMIT_ERRORS, _SCHEMA_REGISTRY_ERRORS, _MAX_OFFSET_LAG, _SUM_OFFSET_LAG)


class MappingMetrics:
    """One mapping's metrics, bound to its labels once (a labelled child lookup costs a lock and a dict)."""

    def __init__(self, uuid: str, function: str) -> None:
        labels = (uuid, function)
        self._polled = _POLLED.labels(*labels)
        self._filtered = _FILTERED_OUT.labels(*labels)
        self._invoked = _INVOKED.labels(*labels)
        self._failed = _FAILED_INVOKE.labels(*labels)
        self._dropped = _DROPPED.labels(*labels)
        self._delivered = _DESTINATION_DELIVERED.labels(*labels)
        self._committed = _COMMITTED.labels(*labels)
        self._polling_errors = _POLLING_ERRORS.labels(*labels)
        self._invoke_errors = _INVOKE_ERRORS.labels(*labels)
        self._destination_errors = _DESTINATION_ERRORS.labels(*labels)
        self._commit_errors = _COMMIT_ERRORS.labels(*labels)
        self._schema_errors = _SCHEMA_REGISTRY_ERRORS.labels(*labels)
        self._labels = labels
        #: Last known lag per partition. The lag gauges appear with the first known lag (never a made-up 0)
        #: and keep a partition's last value while its watermarks cannot be read.
        self._lag_of: dict[tuple[str, int], int] = {}
        self._lag_shown = False

    def polled(self, records: int, filtered: int = 0) -> None:
        if records:
            self._polled.inc(records)
        if filtered:
            self._filtered.inc(filtered)

    def invoked(self, records: int, *, failed: bool = False, error: bool = False) -> None:
        """One invoke of ``records``: ``failed`` if any of them failed (error or batchItemFailures),
        ``error`` if the invoke itself failed (handler error, timeout, crash, throttle)."""
        self._invoked.inc(records)
        if failed:
            self._failed.inc(records)
        if error:
            self._invoke_errors.inc()

    def dropped(self, records: int) -> None:
        self._dropped.inc(records)

    def destination_delivered(self, records: int) -> None:
        self._delivered.inc(records)

    def destination_error(self) -> None:
        self._destination_errors.inc()

    def committed(self, delta: int) -> None:
        if delta > 0:
            self._committed.inc(delta)

    def polling_error(self) -> None:
        self._polling_errors.inc()

    def commit_error(self) -> None:
        self._commit_errors.inc()

    def schema_registry_error(self) -> None:
        self._schema_errors.inc()

    def lags(self, lags: Mapping[tuple[str, int], int | None]) -> None:
        """The assigned partitions' lags (None = not known now: the last known value stays)
        -> MaxOffsetLag and SumOffsetLag."""
        for tp, lag in lags.items():
            if lag is not None:
                self._lag_of[tp] = lag
        self._show_lag()

    def released(self, tps: Iterable[tuple[str, int]]) -> None:
        """Partitions another member now owns: their lag is no longer this mapping's here."""
        for tp in tps:
            self._lag_of.pop(tp, None)
        self._show_lag()

    def _show_lag(self) -> None:
        if not self._lag_of and not self._lag_shown:
            return  # nothing known yet: absent, not 0
        self._lag_shown = True
        _MAX_OFFSET_LAG.labels(*self._labels).set(max(self._lag_of.values(), default=0))
        _SUM_OFFSET_LAG.labels(*self._labels).set(sum(self._lag_of.values()))


def forget(uuid: str, function: str) -> None:
    """Drop a deleted mapping's series, so /metrics does not report it forever."""
    for metric in _ALL:
        try:
            metric.remove(uuid, function)
        except KeyError:
            pass
