"""A broker outage is visible: LastProcessingResult carries Lambda's connection PROBLEM, ``/ready``
answers 503, the lag keeps its last known value (never a false 0), and all of it clears when the
broker is back. Against a private broker (its own port base) that the test stops and starts again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import REGISTRY

from esm_helpers import function_config, mapping_config, produce, wait_until, write_handler
from triggerfish import App, localkafka
from triggerfish.esm import problems
from triggerfish.esm.store import Store
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

#: No other test uses this port base (test_localkafka: 19700, test_stages: 19710).
_PORT_BASE = 19780

STUCK = """
def handler(event, context):
    for records in event["records"].values():
        for r in records:
            if r["offset"] == 0:
                raise RuntimeError("the first record fails until the test ends")
    return {"ok": True}
"""


def _lag(uuid_: str) -> float | None:
    return REGISTRY.get_sample_value("triggerfish_esm_max_offset_lag", {"uuid": uuid_, "function": "f"})


def _stored(state: Path, uuid_: str) -> dict[str, Any]:
    """The status row `triggerfish status` reads (written by the engine)."""
    store = Store(state)
    try:
        saved = store.status(uuid_)
    finally:
        store.close()
    return saved[0] if saved else {}


def _ready(url: str) -> int:
    return httpx.get(f"{url}/ready", timeout=5).status_code


def test_broker_outage_shows_problem_not_ready_and_keeps_lag(kafka: KafkaEnv, tmp_path: Path) -> None:
    env = localkafka.up(_PORT_BASE)
    try:
        topic = f"outage-{uuid.uuid4().hex[:8]}"
        admin = AdminClient(env.plaintext())  # kept referenced until the topic exists
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        produce(env.bootstrap, topic, [b"stuck", b"a", b"b", b"c", b"d"])
        state = tmp_path / "state.db"
        fn = function_config(write_handler(tmp_path, "stuck", STUCK), "stuck.handler")
        with App([fn], [mapping_config(topic, env.bootstrap, BatchSize=1)], state=state, port=0) as app:
            assert app.url is not None
            [mapping] = app.engine.list()
            uid = mapping.uuid
            wait_until(lambda: _lag(uid) == 5 and _ready(app.url) == 200, timeout=60,
                       message="lag 5 behind the failing first record, and ready")
            assert httpx.get(f"{app.url}/health").status_code == 200

            down_at = time.monotonic()
            assert localkafka.down(_PORT_BASE, keep_data=True)
            stopped_at = time.monotonic()
            not_ready_at = problem_at = None
            lags, stored_lags, results = set(), set(), set()
            # Stay down past the 10 s session timeout: the consumer loses its partitions meanwhile.
            while time.monotonic() - down_at < 25:
                if not_ready_at is None and _ready(app.url) == 503:
                    not_ready_at = time.monotonic()
                row = _stored(state, uid)
                results.add(row.get("LastProcessingResult"))
                if problem_at is None and row.get("LastProcessingResult") == problems.CONNECTION_ERROR:
                    problem_at = time.monotonic()
                lags.add(_lag(uid))
                stored_lags.update(p.get("lag") for p in row.get("Partitions", []))
                time.sleep(0.1)
            assert not_ready_at is not None and problem_at is not None, results
            body = httpx.get(f"{app.url}/ready").json()
            assert body["ready"] is False
            assert body["notReady"] == [{"UUID": uid, "State": "Enabled",
                                         "LastProcessingResult": problems.CONNECTION_ERROR}]
            assert httpx.get(f"{app.url}/health").status_code == 200, "liveness is not readiness"
            view = app.engine.get(uid).status
            assert view.problem is not None and view.problem.stage == "poll"
            assert f"no broker of {env.bootstrap} reachable since" in view.problem.detail
            assert "Connection refused" in view.problem.detail or "Disconnected" in view.problem.detail
            # the last known lag, never a made-up 0
            assert lags == {5.0}, lags
            assert stored_lags <= {5, None} and 5 in stored_lags, stored_lags
            shown = subprocess.run([sys.executable, "-m", "triggerfish", "status", "--state", str(state), "--json"],
                                   capture_output=True, text=True, timeout=60)
            doc = json.loads(shown.stdout)["EventSourceMappings"][0]
            assert doc["LastProcessingResult"] == problems.CONNECTION_ERROR
            assert "reachable since" in doc["Problem"]["detail"]

            up_at = time.monotonic()
            localkafka.up(_PORT_BASE)
            started_at = time.monotonic()
            wait_until(lambda: _ready(app.url) == 200, timeout=60, message="ready again")
            ready_at = time.monotonic()
            wait_until(lambda: _stored(state, uid).get("LastProcessingResult") != problems.CONNECTION_ERROR,
                       timeout=10, message="the PROBLEM clears")
            assert app.engine.get(uid).status.problem is None or \
                app.engine.get(uid).status.problem.problem == problems.FUNCTION_CALL
            wait_until(lambda: _lag(uid) == 5, timeout=30)
        print(f"\noutage: stop took {stopped_at - down_at:.1f} s; not ready {not_ready_at - down_at:.1f} s and "
              f"PROBLEM in status {problem_at - down_at:.1f} s after the stop began; broker start took "
              f"{started_at - up_at:.1f} s, ready again {ready_at - started_at:.1f} s after it; lag seen {lags}")
    finally:
        localkafka.down(_PORT_BASE)
