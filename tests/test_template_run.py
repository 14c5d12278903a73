"""``triggerfish run --template``: a SAM template and a plain CloudFormation JSON template run end to end
against the real broker, records flowing to their handlers; ``status --template`` reads what they did.

Two processes run side by side for the whole module (one per template), so every assertion shares
their start-up. The SAM template has what people write: Parameters with overrides, Conditions,
Mappings, Globals, a SelfManagedKafka event with a filter, an MSK event redirected to the local broker
with a Kafka on-failure destination, a function URL, a Node.js function that is skipped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import NewTopic

from destination_support import failed_value, failure_document
from esm_helpers import produce, wait_until
from test_failure_handling import read_topic

pytestmark = pytest.mark.kafka

HANDLERS = """\
import base64, json, os

def _record(name, event):
    values = [json.loads(base64.b64decode(r["value"])) if r["value"].startswith("ey") else
              base64.b64decode(r["value"]).decode() for recs in event["records"].values() for r in recs]
    with open(os.path.join(os.environ["OUT"], name + ".jsonl"), "a") as f:
        f.write(json.dumps({"values": values, "source": event["eventSource"], "stage": os.environ["STAGE"]}) + "\\n")
    return values

def orders(event, context):
    if "records" not in event:  # called through its function URL
        return {"statusCode": 200, "body": json.dumps({"path": event["rawPath"], "stage": os.environ["STAGE"]})}
    _record("orders", event)

def payments(event, context):
    if "bad" in _record("payments", event):
        raise ValueError("payment refused")

def ledger(event, context):
    _record("ledger", event)

def secure(event, context):
    _record("secure", event)
"""

SAM = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  OrdersTopic: {Type: String}
  PaymentsTopic: {Type: String}
  DlqTopic: {Type: String}
  SecureTopic: {Type: String}
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Mappings:
  Sizes: {dev: {Batch: 5}, prod: {Batch: 100}}
Globals:
  Function:
    Runtime: python3.12
    CodeUri: code/
    Timeout: 10
    Environment:
      Variables:
        OUT: set-by-env-vars
        STAGE: !Ref Stage
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Handler: rec.orders
      FunctionUrlConfig: {AuthType: NONE}
      Events:
        Stream:
          Type: SelfManagedKafka
          Properties:
            KafkaBootstrapServers: [kafka-1.prod.internal:9092]
            Topics: [!Ref OrdersTopic]
            StartingPosition: TRIM_HORIZON
            BatchSize: !FindInMap [Sizes, !Ref Stage, Batch]
            MaximumBatchingWindowInSeconds: 0
            FilterCriteria:
              Filters:
                - Pattern: '{"value": {"kind": ["order"]}}'
            SourceAccessConfigurations:
              - {Type: VPC_SUBNET, URI: "subnet:subnet-0123abcd"}
              - {Type: VPC_SECURITY_GROUP, URI: "security_group:sg-0123abcd"}
  Payments:
    Type: AWS::Serverless::Function
    Properties:
      Handler: rec.payments
      Events:
        Msk:
          Type: MSK
          Properties:
            Stream: !Sub arn:aws:kafka:${AWS::Region}:${AWS::AccountId}:cluster/prod/abc-123
            Topics: [!Ref PaymentsTopic]
            StartingPosition: TRIM_HORIZON
            MaximumBatchingWindowInSeconds: 0
            MaximumRetryAttempts: 0
            DestinationConfig:
              OnFailure: {Type: Kafka, Destination: !Sub "kafka://${DlqTopic}"}
  KafkaLogin:
    Type: AWS::SecretsManager::Secret
    Properties: {Name: prod/kafka/orders}
  KafkaCa:
    Type: AWS::SecretsManager::Secret
  Secure:
    Type: AWS::Serverless::Function
    Properties:
      Handler: rec.secure
      Events:
        Stream:
          Type: SelfManagedKafka
          Properties:
            KafkaBootstrapServers: [kafka-1.prod.internal:9096]
            Topics: [!Ref SecureTopic]
            StartingPosition: TRIM_HORIZON
            MaximumBatchingWindowInSeconds: 0
            SourceAccessConfigurations:
              - {Type: SASL_SCRAM_512_AUTH, URI: !Ref KafkaLogin}
              - {Type: SERVER_ROOT_CA_CERTIFICATE, URI: !Ref KafkaCa}
  Audit:
    Type: AWS::Serverless::Function
    Condition: IsProd
    Properties: {Handler: rec.orders}
  Web:
    Type: AWS::Serverless::Function
    Properties: {Runtime: nodejs20.x, Handler: index.handler}
"""


def _cfn(topic: str) -> dict[str, object]:
    """Plain CloudFormation, as JSON: a function, its mapping, parameters for the broker and the output."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"Broker": {"Type": "String"}, "OutDir": {"Type": "String"},
                       "Topic": {"Type": "String", "Default": topic}},
        "Resources": {
            "Ledger": {"Type": "AWS::Lambda::Function", "Properties": {
                "Code": "code/", "Handler": "rec.ledger", "Runtime": "python3.11", "Timeout": 10,
                "FunctionName": {"Fn::Sub": "${AWS::StackName}-ledger"},
                "Environment": {"Variables": {"OUT": {"Ref": "OutDir"}, "STAGE": "cfn"}}}},
            "LedgerMapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                "FunctionName": {"Fn::GetAtt": ["Ledger", "Arn"]}, "Topics": [{"Ref": "Topic"}],
                "StartingPosition": "TRIM_HORIZON", "MaximumBatchingWindowInSeconds": 0,
                "SelfManagedEventSource": {"Endpoints": {"KafkaBootstrapServers": [{"Ref": "Broker"}]}}}},
        },
    }


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    log_path: Path
    args: list[str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, count: int = 1) -> None:
        wait_until(lambda: self.log().count(text) >= count or self.proc.poll() is not None, 60,
                   message=f"{text!r} in {self.log_path}")
        assert self.log().count(text) >= count, f"exited {self.proc.returncode}:\n{self.log()[-3000:]}"


def _start(directory: Path, *args: str, env: dict[str, str] | None = None) -> Running:
    log = directory / "run.log"
    cmd = [sys.executable, "-m", "triggerfish", "run", *args]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=directory,
                                env={**os.environ, "COLUMNS": "250", **(env or {})})
    return Running(proc, log, list(args))


def _stop(run: Running) -> int:
    run.proc.send_signal(signal.SIGTERM)
    try:
        return run.proc.wait(60)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        return -9


def _lines(out: Path, name: str) -> list[dict[str, object]]:
    path = out / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _values(out: Path, name: str) -> list[object]:
    return [v for line in _lines(out, name) for v in line["values"]]  # type: ignore[attr-defined]


@dataclass
class Stack:
    sam: Running
    cfn: Running
    out: Path
    topics: dict[str, str]
    sam_dir: Path


@pytest.fixture(scope="module")
def stack(kafka, admin, tmp_path_factory) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    topics = {name: f"tpl-{name}-{suffix}" for name in ("orders", "payments", "dlq", "ledger", "secure")}
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        future.result(30)
    root = tmp_path_factory.mktemp("templates")
    out = root / "out"
    out.mkdir()
    for name in ("sam", "cfn"):
        (root / name / "code").mkdir(parents=True)
        (root / name / "code" / "rec.py").write_text(HANDLERS)
    (root / "sam" / "template.yaml").write_text(SAM)
    (root / "sam" / "env.json").write_text(json.dumps({"Parameters": {"OUT": str(out)}}))
    # The template's secrets and the SASL broker, redirected: a file and an environment variable
    (root / "sam" / "secrets").mkdir()
    (root / "sam" / "secrets" / "login.json").write_text(json.dumps(
        {"username": kafka.admin_user, "password": kafka.admin_password}))
    (root / "sam" / "overrides.yaml").write_text(
        f"Secure.Stream: {{BootstrapServers: ['{kafka.sasl_bootstrap}']}}\n"
        "KafkaLogin: {Secret: file://secrets/login.json}\nKafkaCa: {Secret: 'env:TPL_TEST_KAFKA_CA'}\n")
    ca = json.dumps({"certificate": Path(kafka.ca_file).read_text()})
    (root / "cfn" / "template.json").write_text(json.dumps(_cfn(topics["ledger"]), indent=2))
    sam = _start(root / "sam", "--template", "template.yaml", "--port", "0", "--env-vars", "env.json",
                 "--kafka-bootstrap", kafka.bootstrap, "--parameter-overrides",
                 f"OrdersTopic={topics['orders']} PaymentsTopic={topics['payments']}",
                 "--parameter-overrides", f"ParameterKey=DlqTopic,ParameterValue={topics['dlq']} SecureTopic="
                 f"{topics['secure']}", "--overrides", "overrides.yaml", env={"TPL_TEST_KAFKA_CA": ca})
    cfn = _start(root / "cfn", "--template", "template.json", "--no-api", "--parameter-overrides",
                 f"Broker={kafka.bootstrap} OutDir={out}")
    try:
        sam.wait_log("assigned", count=3)
        cfn.wait_log("assigned")
        yield Stack(sam, cfn, out, topics, root / "sam")
    finally:
        codes = [_stop(sam), _stop(cfn)]
        admin.delete_topics(list(topics.values()))
    assert codes == [0, 0], sam.log()[-2000:] + cfn.log()[-2000:]


def test_sam_records_flow_through_the_filter_to_the_handler(stack: Stack, kafka):
    events = [{"kind": "order", "id": 1}, {"kind": "refund", "id": 2}, {"kind": "order", "id": 3}]
    produce(kafka.bootstrap, stack.topics["orders"], [json.dumps(e).encode() for e in events])
    wait_until(lambda: len(_values(stack.out, "orders")) >= 2, 30, message="orders delivered")
    assert _values(stack.out, "orders") == [events[0], events[2]]  # the refund was filtered out
    line = _lines(stack.out, "orders")[0]
    assert line["source"] == "SelfManagedKafka" and line["stage"] == "dev"  # STAGE: !Ref Stage via Globals


def test_msk_event_runs_on_the_local_broker_and_failures_reach_the_kafka_destination(stack: Stack, kafka):
    produce(kafka.bootstrap, stack.topics["payments"], [b"ok-1"])
    wait_until(lambda: _values(stack.out, "payments"), 30, message="payments delivered")
    produce(kafka.bootstrap, stack.topics["payments"], [b"bad"])
    (dead,) = read_topic(kafka, stack.topics["dlq"], 1)
    assert _lines(stack.out, "payments")[0]["source"] == "aws:kafka"
    assert failed_value(dead) == b"bad"  # in Lambda's failure document, keyed by the record's key
    assert failure_document(dead)["requestContext"]["condition"] == "RetryAttemptsExhausted"
    headers = dict(dead.headers())
    assert headers["triggerfish.failure.error-message"] == b"payment refused"
    assert headers["triggerfish.source.topic"] == stack.topics["payments"].encode()


def test_plain_cloudformation_json_runs_too(stack: Stack, kafka):
    produce(kafka.bootstrap, stack.topics["ledger"], [b"l-1", b"l-2"])
    wait_until(lambda: len(_values(stack.out, "ledger")) >= 2, 30, message="ledger delivered")
    assert _values(stack.out, "ledger") == ["l-1", "l-2"]
    assert _lines(stack.out, "ledger")[0]["stage"] == "cfn"
    assert "triggerfish running 1 function(s), 1 mapping(s)" in stack.cfn.log()


def test_secrets_and_brokers_from_the_overrides_file_log_in_over_sasl(stack: Stack, kafka):
    produce(kafka.bootstrap, stack.topics["secure"], [b"s-1"])
    wait_until(lambda: _values(stack.out, "secure"), 30, message="secure delivered")
    assert _values(stack.out, "secure") == ["s-1"]
    assert kafka.admin_password not in stack.sam.log()


def test_function_url_answers(stack: Stack):
    api = re.search(r"control API on (http://\S+?);", stack.sam.log())
    assert api, stack.sam.log()[-2000:]
    response = httpx.get(f"{api.group(1)}/lambda-url/Orders/hello", timeout=10)
    assert response.status_code == 200 and response.json() == {"path": "/hello", "stage": "dev"}


def test_start_lists_what_does_not_run_once_and_each_skip_in_one_line(stack: Stack):
    log = stack.sam.log()
    not_run = [line for line in log.splitlines() if "not run here" in line]
    assert len(not_run) == 1
    assert "Audit (condition IsProd is false)" in not_run[0] and "OrdersRole (AWS::IAM::Role)" in not_run[0]
    assert "OrdersUrlPublicPermissions (AWS::Lambda::Permission)" in not_run[0]
    assert log.count("Web: skipped: runtime nodejs20.x is not Python; triggerfish runs Python handlers only") == 1
    assert "triggerfish running 3 function(s), 3 mapping(s)" in log
    assert "Traceback" not in log and "samtranslator" not in log


def test_status_template_shows_the_templates_mappings(stack: Stack):
    args = [a for a in stack.sam.args if a not in ("--port", "0")]
    done = subprocess.run([sys.executable, "-m", "triggerfish", "status", *args, "--json"], capture_output=True,
                          text=True, timeout=60, cwd=stack.sam_dir)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["Engine"]["Running"] is True
    by_function = {m["FunctionName"]: m for m in doc["EventSourceMappings"]}
    assert set(by_function) == {"Orders", "Payments", "Secure"}
    assert by_function["Orders"]["Topics"] == [stack.topics["orders"]]
    assert by_function["Orders"]["State"] == "Enabled"


def test_quickstart_template_runs_with_one_command(kafka, make_topic, tmp_path):
    """The README's command, on a copy of examples/quickstart (its own topic and state file)."""
    example = Path(__file__).resolve().parent.parent / "examples" / "quickstart"
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "orders.py").write_text((example / "functions" / "orders.py").read_text())
    (tmp_path / "template.yaml").write_text((example / "template.yaml").read_text())
    topic = make_topic()
    run = _start(tmp_path, "--template", "template.yaml", "--no-api", "--parameter-overrides",
                 f"Topic={topic} Brokers={kafka.bootstrap}")
    try:
        run.wait_log("assigned")
        produce(kafka.bootstrap, topic, [json.dumps({"id": 7, "customer": "ann", "amount": 12.5}).encode()])
        run.wait_log("order 7 from ann: 12.50 EUR")
    finally:
        code = _stop(run)
    assert code == 0, run.log()[-2000:]
