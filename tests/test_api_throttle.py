"""ReservedConcurrentExecutions shared between the engine's batches and synchronous calls: while a mapping's
batch holds a function's only slot, a function URL call and a RequestResponse Invoke get 429
TooManyRequestsException at once instead of queueing behind the batch (real broker, real workers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from api_support import lambda_client
from esm_helpers import (
    committed_offsets,
    function_config,
    mapping_config,
    produce,
    wait_until,
    write_handler,
)
from triggerfish import App
from triggerfish.errors import FunctionThrottled
from triggerfish.functions.runtime import FunctionRuntime
from triggerfish.localkafka import KafkaEnv

#: Kafka batches mark that they started and hold the worker for a while; URL calls answer at once.
SLOW_BATCH = """
import os, time

def handler(event, context):
    if "records" in event:
        open(os.environ["MARKER"], "a").write("batch\\n")
        time.sleep(float(os.environ["HOLD"]))
        return {"ok": True}
    return {"statusCode": 200, "body": "url ok"}
"""


def single_flight(tmp_path: Path, hold: float):
    code = write_handler(tmp_path, "slowbatch", SLOW_BATCH)
    marker = tmp_path / "batch.marker"
    fn = function_config(code, "slowbatch.handler", ReservedConcurrentExecutions=1, Timeout=30,
                         FunctionUrlConfig={"AuthType": "NONE"},
                         Environment={"Variables": {"MARKER": str(marker), "HOLD": str(hold)}})
    return fn, marker


def test_runtime_refuses_instead_of_waiting(tmp_path: Path) -> None:
    fn, marker = single_flight(tmp_path, 1.5)
    runtime = FunctionRuntime([fn])
    try:
        busy = threading.Thread(target=runtime.invoke, args=("f", {"records": {}}))
        busy.start()
        wait_until(marker.exists, timeout=20, message="the first invocation started")
        started = time.monotonic()
        with pytest.raises(FunctionThrottled, match="ReservedConcurrentExecutions"):
            runtime.invoke("f", {}, wait=False)
        assert time.monotonic() - started < 0.5  # refused at once, not after the busy one finished
        busy.join()
        assert runtime.invoke("f", {}, wait=False).ok  # the slot is free again
    finally:
        runtime.close()


@pytest.mark.kafka
def test_url_and_invoke_get_429_while_a_batch_holds_the_only_slot(
    kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic()
    fn, marker = single_flight(tmp_path, 3.0)
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=1)
    with App([fn], [mapping], state=tmp_path / "state.db", port=0) as app:
        url, uuid = app.url, app.engine.list()[0].uuid
        produce(kafka.bootstrap, topic, [b"hold the worker"])
        wait_until(marker.exists, timeout=30, message="the batch started")
        started = time.monotonic()
        refused = httpx.post(f"{url}/lambda-url/f/", timeout=30)
        assert refused.status_code == 429, refused.text
        assert refused.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
        with pytest.raises(ClientError) as info:
            lambda_client(url).invoke(FunctionName="f", Payload=b"{}")
        assert info.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert time.monotonic() - started < 2.5  # answered while the batch still held the worker
        # the batch finishes and is committed; then the URL is served again
        wait_until(lambda: committed_offsets(kafka.bootstrap, uuid, topic, 1) == {0: 1}, timeout=30)
        served = httpx.post(f"{url}/lambda-url/f/", timeout=30)
        assert (served.status_code, served.text) == (200, "url ok")
