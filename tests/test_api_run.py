"""``triggerfish run`` serves the control API: one process, one port, API-created mappings that
deliver records and are still there after the process restarts; --require-auth end to end."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from api_support import lambda_client
from esm_helpers import RECORDER, function_dict, produce, read_invocations, wait_until, write_config, write_handler

pytestmark = pytest.mark.kafka

KEY_ID, SECRET = "AKIDRUNTEST", "run/secret"


def kafka_values(out: Path) -> list[bytes]:
    """Record values from Kafka events only (the function URL call is recorded too)."""
    return [base64.b64decode(r["value"]) for inv in read_invocations(out) if "records" in inv["event"]
            for records in inv["event"]["records"].values() for r in records]


class Run:
    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "ab")
        env = {**os.environ, "COLUMNS": "250", "TRIGGERFISH_ACCESS_KEY_ID": KEY_ID,
               "TRIGGERFISH_SECRET_ACCESS_KEY": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "triggerfish", "run", "--config", str(config), "--port", "0", "--require-auth"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        found = wait_until(lambda: re.search(r"control API on (http://127\.0\.0\.1:\d+)", self.log())
                           or self.proc.poll() is not None, timeout=60, message="control API URL in the log")
        assert self.proc.poll() is None, self.log()[-3000:]
        self.url = found.group(1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            self._log.close()


def test_run_serves_the_api_and_keeps_api_mappings(kafka, make_topic, tmp_path: Path) -> None:
    topic = make_topic()
    code = write_handler(tmp_path, "rec", RECORDER)
    out = tmp_path / "out.jsonl"
    config = write_config(tmp_path / "triggerfish.yaml",
                          [function_dict(code, Environment={"Variables": {"OUT": str(out)}},
                                         FunctionUrlConfig={"AuthType": "NONE"}, ReservedConcurrentExecutions=2)],
                          [])
    first = Run(config, tmp_path / "run1.log")
    try:
        client = lambda_client(first.url, KEY_ID, SECRET)
        with pytest.raises(ClientError) as info:
            lambda_client(first.url, KEY_ID, "wrong").list_functions()
        assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
        uuid = client.create_event_source_mapping(
            FunctionName="f", Topics=[topic], StartingPosition="TRIM_HORIZON", MaximumBatchingWindowInSeconds=0,
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
        )["UUID"]
        produce(kafka.bootstrap, topic, [b"first"])
        wait_until(lambda: kafka_values(out) == [b"first"], message="delivered by the run process")
        url = client.get_function_url_config(FunctionName="f")["FunctionUrl"]
        assert url == f"{first.url}/lambda-url/f/"
        assert httpx.post(url + "hook?x=1", json={"hello": 1}).json() == {"ok": True}
        url_event = [inv["event"] for inv in read_invocations(out) if "rawPath" in inv["event"]]
        assert url_event[0]["rawPath"] == "/hook" and url_event[0]["body"] == '{"hello":1}'
        metrics = httpx.get(f"{first.url}/metrics").text
        assert 'triggerfish_api_requests_total{operation="CreateEventSourceMapping",status="202"} 1.0' in metrics
    finally:
        assert first.stop() == 0

    second = Run(config, tmp_path / "run2.log")
    try:
        client = lambda_client(second.url, KEY_ID, SECRET)
        mappings = client.list_event_source_mappings(FunctionName="f")["EventSourceMappings"]
        assert [m["UUID"] for m in mappings] == [uuid]
        produce(kafka.bootstrap, topic, [b"second"])
        wait_until(lambda: kafka_values(out)[-1:] == [b"second"], message="delivered after restart")
        assert kafka_values(out).count(b"first") == 1
    finally:
        assert second.stop() == 0
