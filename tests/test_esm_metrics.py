"""Lambda's event source mapping metrics (EventCount, ErrorCount, KafkaMetrics) through a real engine and
the real broker: values read from prometheus-client's registry, and from ``/metrics`` of ``triggerfish run``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api_support import lambda_client
from esm_helpers import (
    RunningEngine,
    committed_offsets,
    function_config,
    function_dict,
    mapping_config,
    mapping_dict,
    produce,
    wait_until,
    write_config,
    write_handler,
)
from test_api_run import KEY_ID, SECRET, Run
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

#: Raises on records whose JSON value has "poison": true.
METERED = """
import base64, json

def handler(event, context):
    for records in event["records"].values():
        for r in records:
            if json.loads(base64.b64decode(r["value"])).get("poison"):
                raise ValueError(f"poison at offset {r['offset']}")
    return {"ok": True}
"""

N = 20
FILTERED = {3, 7, 11, 15, 19}  # "keep": false
POISON = {5, 10}
KEEP_PATTERN = json.dumps({"value": {"keep": [True]}})


def values() -> list[bytes]:
    return [json.dumps({"n": i, "keep": i not in FILTERED, "poison": i in POISON}).encode() for i in range(N)]


def expected() -> dict[str, float]:
    """BatchSize 1, one retry, then the DLQ: every record but the poison ones is invoked once."""
    invoked_ok = N - len(FILTERED) - len(POISON)
    return {
        "polled_events_total": N,
        "filtered_out_events_total": len(FILTERED),
        "invoked_events_total": invoked_ok + 2 * len(POISON),
        "failed_invoke_events_total": 2 * len(POISON),
        "invoke_errors_total": 2 * len(POISON),
        "on_failure_destination_delivered_events_total": len(POISON),
        "dropped_events_total": 0,
        "on_failure_destination_delivery_errors_total": 0,
        "committed_events_total": N,
        "commit_errors_total": 0,
        "max_offset_lag": 0,
        "sum_offset_lag": 0,
    }


def sample(name: str, uuid: str, function: str = "f") -> float | None:
    return REGISTRY.get_sample_value(f"triggerfish_esm_{name}", {"uuid": uuid, "function": function})


def registry_values(uuid: str, names: list[str]) -> dict[str, float | None]:
    return {name: sample(name, uuid) for name in names}


def metered(tmp_path: Path):
    return function_config(write_handler(tmp_path, "metered", METERED), "metered.handler")


def test_event_and_error_counts_and_lag(kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path) -> None:
    topic, dlq = make_topic(), make_topic(prefix="dlq")
    produce(kafka.bootstrap, topic, values())
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=1, MaximumRetryAttempts=1,
                             FilterCriteria={"Filters": [{"Pattern": KEEP_PATTERN}]},
                             DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}})
    want = expected()
    with RunningEngine([metered(tmp_path)], [mapping], tmp_path) as eng:
        uuid = eng.uuids[0]
        wait_until(lambda: committed_offsets(kafka.bootstrap, uuid, topic, 1) == {0: N}, timeout=40,
                   message="all offsets committed")
        # the lag gauges follow the status refresh (once a second)
        wait_until(lambda: registry_values(uuid, list(want)) == want, timeout=15,
                   message=f"metrics {registry_values(uuid, list(want))} == {want}")
        assert sample("polling_errors_total", uuid) == 0
        # a deleted mapping's series leave /metrics
        eng.engine.remove(uuid)
        assert eng.engine.wait_for(uuid) is None
        assert sample("polled_events_total", uuid) is None and sample("max_offset_lag", uuid) is None


def test_dropped_events_and_lag_of_a_stuck_partition(kafka: KafkaEnv, make_topic: Callable[..., str],
                                                     tmp_path: Path) -> None:
    stuck, dropping = make_topic(partitions=2), make_topic()
    poison = json.dumps({"poison": True}).encode()
    fine = json.dumps({"n": 1}).encode()
    produce(kafka.bootstrap, stuck, [poison, fine, fine, fine], partition=0)
    produce(kafka.bootstrap, stuck, [poison] + [fine] * 6, partition=1)
    produce(kafka.bootstrap, dropping, [fine, poison, fine])
    fn = metered(tmp_path)
    mappings = [
        mapping_config(stuck, kafka.bootstrap, BatchSize=1),  # retries forever: the partitions stay behind
        mapping_config(dropping, kafka.bootstrap, BatchSize=1, MaximumRetryAttempts=0),  # no destination: dropped
    ]
    with RunningEngine([fn], mappings, tmp_path) as eng:
        blocked, dropper = eng.uuids
        wait_until(lambda: (sample("max_offset_lag", blocked), sample("sum_offset_lag", blocked)) == (7, 11),
                   timeout=30, message="lag 4 + 7 with the first record of each partition failing")
        wait_until(lambda: (sample("invoke_errors_total", blocked) or 0) >= 4, timeout=30,
                   message="retries of both poison records")
        assert sample("committed_events_total", blocked) == 0
        assert sample("on_failure_destination_delivered_events_total", blocked) == 0
        wait_until(lambda: committed_offsets(kafka.bootstrap, dropper, dropping, 1) == {0: 3}, timeout=30)
        wait_until(lambda: sample("committed_events_total", dropper) == 3, timeout=10)
        assert registry_values(dropper, ["dropped_events_total", "invoked_events_total", "failed_invoke_events_total",
                                         "invoke_errors_total"]) == {
            "dropped_events_total": 1, "invoked_events_total": 3, "failed_invoke_events_total": 1,
            "invoke_errors_total": 1}
        # retries count again: every invoke of the stuck partitions is a failed one
        invoked, failed = sample("invoked_events_total", blocked), sample("failed_invoke_events_total", blocked)
        assert invoked is not None and invoked >= 4 and failed == invoked


PARTIAL = """
import base64, json

def handler(event, context):
    failed = [{"itemIdentifier": {"partition": f"{r['topic']}-{r['partition']}", "offset": r["offset"]}}
              for records in event["records"].values() for r in records
              if json.loads(base64.b64decode(r["value"])).get("poison")]
    return {"batchItemFailures": failed}
"""


def test_partial_batch_failures_count_as_failed_invokes(kafka: KafkaEnv, make_topic: Callable[..., str],
                                                        tmp_path: Path) -> None:
    topic = make_topic()
    produce(kafka.bootstrap, topic, [json.dumps({"n": i, "poison": i == 2}).encode() for i in range(5)])
    fn = function_config(write_handler(tmp_path, "partial", PARTIAL), "partial.handler")
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=5, MaximumBatchingWindowInSeconds=5,
                             MaximumRetryAttempts=0, FunctionResponseTypes=["ReportBatchItemFailures"])
    with RunningEngine([fn], [mapping], tmp_path) as eng:
        uuid = eng.uuids[0]
        wait_until(lambda: committed_offsets(kafka.bootstrap, uuid, topic, 1) == {0: 5}, timeout=30)
        wait_until(lambda: sample("committed_events_total", uuid) == 5, timeout=10)
        # one invoke of 5 answered with a failure at offset 2: 0-1 succeed, 2-4 are given up (no retries)
        assert registry_values(uuid, ["invoked_events_total", "failed_invoke_events_total", "invoke_errors_total",
                                      "dropped_events_total"]) == {
            "invoked_events_total": 5, "failed_invoke_events_total": 5, "invoke_errors_total": 0,
            "dropped_events_total": 3}


def scrape(url: str, function: str) -> dict[tuple[str, str], float]:
    """``/metrics`` parsed: (sample name, uuid) -> value for the engine metrics of ``function``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("triggerfish_esm_") and s.labels.get("function") == function:
                out[(s.name[len("triggerfish_esm_"):], s.labels["uuid"])] = s.value
    return out


def test_metrics_endpoint_of_triggerfish_run(kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path) -> None:
    topic, dlq = make_topic(), make_topic(prefix="dlq")
    produce(kafka.bootstrap, topic, values())
    code = write_handler(tmp_path, "metered", METERED)
    config = write_config(tmp_path / "triggerfish.yaml", [function_dict(code, "metered.handler")], [
        mapping_dict(topic, kafka.bootstrap, BatchSize=1, MaximumRetryAttempts=1,
                     FilterCriteria={"Filters": [{"Pattern": KEEP_PATTERN}]},
                     DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}}),
    ])
    run = Run(config, tmp_path / "run.log")
    try:
        (mapping,) = lambda_client(run.url, KEY_ID, SECRET).list_event_source_mappings()["EventSourceMappings"]
        uuid = mapping["UUID"]
        want = {(name, uuid): value for name, value in expected().items()}

        def scraped() -> dict[tuple[str, str], float]:
            got = scrape(run.url, "f")
            return {key: got.get(key) for key in want}

        wait_until(lambda: scraped() == want, timeout=60, message=f"/metrics shows {want}")
        text = httpx.get(f"{run.url}/metrics", timeout=10).text
        assert "# HELP triggerfish_esm_polled_events_total Lambda PolledEventCount" in text
    finally:
        assert run.stop() == 0, run.log()[-3000:]
