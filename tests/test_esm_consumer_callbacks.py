"""librdkafka's callbacks run inside a poll, and confluent-kafka keeps per-thread state for them that some of its
own calls clear (``list_topics``): made inside a callback, such a call makes the process abort at the poll's next
callback. A mapping's consumer must not do that: against the real broker, a rebalance that assigns partitions
while statistics reports pile up in the same poll leaves the process running (in a subprocess: an abort would end
pytest)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable

from tests.esm_helpers import produce

from triggerfish.localkafka import KafkaEnv

_CONSUME = textwrap.dedent("""
    import json, sys, time
    from triggerfish.esm.config import MappingConfig
    from triggerfish.esm.consumer import KafkaSource, consumer_settings
    bootstrap, topic, client = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    mapping = MappingConfig.from_dict({
        "FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}}})
    reports = []
    settings = {**consumer_settings(client, mapping, topic + "-group", "callbacks-test"),
                "statistics.interval.ms": 10, "stats_cb": reports.append}
    # the runner's work on an assignment takes a while: statistics reports queue up behind it in the same poll
    source = KafkaSource(settings, mapping, on_assign=lambda tps, committed: time.sleep(0.3),
                         on_revoke=lambda tps: None)
    seen, deadline = 0, time.monotonic() + 60
    while seen < 20 and time.monotonic() < deadline:
        seen += len(source.poll(100, 0.5))
    leaders = len(source._leaders)
    source.close()
    print(json.dumps({"records": seen, "reports": len(reports), "leaders": leaders}))
""")


def test_a_rebalance_does_not_break_the_callbacks_after_it_in_the_same_poll(
        kafka: KafkaEnv, make_topic: Callable[..., str]) -> None:
    topic = make_topic(partitions=2)
    produce(kafka.bootstrap, topic, [f"r{i}".encode() for i in range(10)], partition=0)
    produce(kafka.bootstrap, topic, [f"r{i}".encode() for i in range(10)], partition=1)
    done = subprocess.run([sys.executable, "-c", _CONSUME, kafka.bootstrap, topic, json.dumps(kafka.plaintext())],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["records"] == 20
    assert result["reports"] > 0  # statistics reports were served (the first after the assignment aborted, before)
    assert result["leaders"] == 2  # and the leaders of both partitions are known, read after that poll
