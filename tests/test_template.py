"""``--template``: SAM and CloudFormation templates become the same ProjectConfig a triggerfish.yaml does.

No broker here: loading, SAM expansion, intrinsics, overrides, skipped functions, error texts with
template paths, and ``invoke --template``. The records-flowing runs are in test_template_run.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from triggerfish import config as project_config
from triggerfish import template
from triggerfish.cli import template_options
from triggerfish.errors import ConfigError, InvalidParameterError
from triggerfish.template.intrinsics import Resolver
from triggerfish.template.parameters import parse_overrides
from triggerfish.template.physical import Place

HANDLER = "import os\n\ndef handler(event, context):\n    return {'got': event, 'env': dict(os.environ)}\n"
VPC = """\
            SourceAccessConfigurations:
              - {Type: VPC_SUBNET, URI: "subnet:subnet-1"}
              - {Type: VPC_SECURITY_GROUP, URI: "security_group:sg-1"}
"""


def _write(tmp_path: Path, text: str, name: str = "template.yaml") -> Path:
    code = tmp_path / "src"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(HANDLER)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _sam(events: str = "", props: str = "", extra: str = "", top: str = "") -> str:
    return f"""\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
{top}
Globals:
  Function:
    Runtime: python3.12
    Timeout: 30
    Environment:
      Variables: {{STAGE: dev, TABLE: orders}}
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
{props}
      Events:
        Stream:
          Type: SelfManagedKafka
          Properties:
            KafkaBootstrapServers: [broker.internal:9092]
            Topics: [orders]
            StartingPosition: TRIM_HORIZON
{VPC}{events}
{extra}
"""


def _error(path: Path, **kw: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        template.load(path, **kw)  # type: ignore[arg-type]
    return info.value


# ---------------------------------------------------------------- what a template becomes


def test_sam_function_and_event_become_the_projects_function_and_mapping(tmp_path):
    path = _write(tmp_path, _sam(events="            BatchSize: 25\n            ConsumerGroupId: orders-g\n"))
    loaded = template.load(path)
    fn = loaded.project.functions["Orders"]
    assert (fn.handler, fn.runtime, fn.timeout, fn.code_uri) == ("app.handler", "python3.12", 30, tmp_path / "src")
    assert fn.environment == {"STAGE": "dev", "TABLE": "orders"}  # from Globals
    (mapping,) = loaded.project.mappings
    assert mapping.function_name == "Orders" and mapping.topics == ("orders",)
    assert mapping.bootstrap_servers == ("broker.internal:9092",) and mapping.batch_size == 25
    assert mapping.consumer_group_id == "orders-g"
    assert loaded.project.state_path == tmp_path / ".triggerfish" / "state.db"
    assert loaded.not_run == ["OrdersRole (AWS::IAM::Role)"]
    assert loaded.skipped == []


def test_auto_publish_alias_targets_the_function(tmp_path):
    path = _write(tmp_path, _sam(props="      AutoPublishAlias: live\n      FunctionUrlConfig: {AuthType: NONE}\n"))
    loaded = template.load(path)
    assert loaded.project.mappings[0].function == "Orders"
    assert loaded.project.mappings[0].function_name.endswith(":function:Orders:live")
    assert loaded.project.functions["Orders"].function_url_config == {"AuthType": "NONE"}


def test_plain_cloudformation_json_gives_the_same_config_as_sam_yaml(tmp_path):
    sam = _write(tmp_path, _sam(events="            BatchSize: 25\n"))
    cfn = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Orders": {"Type": "AWS::Lambda::Function", "Properties": {
                "Code": "src/", "Handler": "app.handler", "Runtime": "python3.12", "Timeout": 30,
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Environment": {"Variables": {"STAGE": "dev", "TABLE": "orders"}}}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
            "OrdersStream": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                "FunctionName": {"Ref": "Orders"}, "Topics": ["orders"], "StartingPosition": "TRIM_HORIZON",
                "BatchSize": 25,
                "SelfManagedEventSource": {"Endpoints": {"KafkaBootstrapServers": ["broker.internal:9092"]}},
                "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
                                               {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}]}},
        },
    }
    (tmp_path / "cfn.json").write_text(json.dumps(cfn, indent=2))
    a, b = template.load(sam).project, template.load(tmp_path / "cfn.json").project
    assert a.functions == b.functions
    assert [m.to_dict() for m in a.mappings] == [m.to_dict() for m in b.mappings]


def test_triggerfish_yaml_and_template_validate_the_same_way(tmp_path):
    """The template's mapping is exactly what config.parse makes of the same fields."""
    path = _write(tmp_path, _sam(events="            MaximumBatchingWindowInSeconds: 3\n"
                                        "            FunctionResponseTypes: [ReportBatchItemFailures]\n"))
    mapping = template.load(path).project.mappings[0]
    direct = project_config.parse({"Functions": [{"FunctionName": "Orders", "Handler": "app.handler",
                                                  "CodeUri": str(tmp_path / "src")}],
                                   "EventSourceMappings": [mapping.to_dict()]})
    assert direct.mappings[0] == mapping


def test_parameters_defaults_overrides_and_both_override_forms(tmp_path):
    path = _write(tmp_path, _sam(
        top="Parameters:\n  Size: {Type: Number, Default: 10}\n  Stage: {Type: String, AllowedValues: [dev, prod]}\n"
            "  Group: {Type: String, Default: g}\n",
        events="            BatchSize: !Ref Size\n            ConsumerGroupId: !Sub '${Group}-${Stage}-${AWS::Region}'\n"))
    loaded = template.load(path, parameter_overrides=["Stage=prod", "ParameterKey=Size,ParameterValue=42"])
    mapping = loaded.project.mappings[0]
    assert mapping.batch_size == 42
    assert mapping.consumer_group_id == "g-prod-" + (os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION") or "us-east-1")
    assert "AllowedValues (dev, prod)" in str(_error(path, parameter_overrides=["Stage=qa"]))
    assert str(_error(path, parameter_overrides=["Stag=dev"])).startswith("--parameter-overrides: Stag is not a parameter")
    # Stage has no default: it is needed only where it is used, and the error says where
    assert str(_error(path)) == ("Resources.Orders.Properties.Events.Stream.Properties.ConsumerGroupId.Fn::Sub: parameter Stage "
                                 "has no Default and no value; pass --parameter-overrides Stage=VALUE (sam deploy's "
                                 "values do not reach a local run)")


def test_ssm_parameters_need_a_local_value(tmp_path):
    path = _write(tmp_path, _sam(top="Parameters:\n  Group: {Type: 'AWS::SSM::Parameter::Value<String>', "
                                     "Default: /orders/group}\n",
                                 events="            ConsumerGroupId: !Ref Group\n"))
    assert str(_error(path)).endswith("ConsumerGroupId.Ref: parameter Group is read from SSM Parameter Store "
                                      "(/orders/group) in AWS; pass --parameter-overrides Group=VALUE")
    loaded = template.load(path, parameter_overrides=["Group=local-g"])
    assert loaded.project.mappings[0].consumer_group_id == "local-g"


def test_parse_overrides_reads_sams_syntax():
    assert parse_overrides(["A=1 B='two words'", "ParameterKey=C,ParameterValue=x=y"]) == {
        "A": "1", "B": "two words", "C": "x=y"}
    with pytest.raises(ConfigError, match="is not Key=Value"):
        parse_overrides(["justaword"])


def test_conditions_drop_resources_and_pick_values(tmp_path):
    extra = """\
  Audit:
    Type: AWS::Serverless::Function
    Condition: IsProd
    Properties: {CodeUri: src/, Handler: app.handler}
"""
    path = _write(tmp_path, _sam(
        top="Parameters:\n  Stage: {Type: String, Default: dev}\nConditions:\n"
            "  IsProd: !Equals [!Ref Stage, prod]\n  IsDev: !Not [!Condition IsProd]\n",
        props="      MemorySize: !If [IsProd, 1024, 256]\n", extra=extra))
    dev = template.load(path)
    assert set(dev.project.functions) == {"Orders"} and dev.project.functions["Orders"].memory_size == 256
    assert "Audit (condition IsProd is false)" in dev.not_run
    prod = template.load(path, parameter_overrides=["Stage=prod"])
    assert set(prod.project.functions) == {"Orders", "Audit"}
    assert prod.project.functions["Orders"].memory_size == 1024


def test_intrinsics():
    r = Resolver({"Env": "dev", "List": ["a", "b"]}, {}, {"M": {"dev": {"Size": 7}}}, {"C": {"Fn::Equals": [1, "1"]}},
                 {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs"}}}, Place("aws", "eu-west-1", "1"))
    assert r.resolve({"Fn::Sub": "${Env}-${!Literal}-${Q.Arn}"}) == "dev-${Literal}-arn:aws:sqs:eu-west-1:1:jobs"
    assert r.resolve({"Fn::Sub": ["${X}/${Env}", {"X": {"Ref": "Q"}}]}) == "https://sqs.eu-west-1.amazonaws.com/1/jobs/dev"
    assert r.resolve({"Fn::Join": ["-", {"Ref": "List"}]}) == "a-b"
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert r.resolve({"Fn::FindInMap": ["M", {"Ref": "Env"}, "Size"]}) == 7
    assert r.resolve({"Fn::Base64": "hi"}) == "aGk="
    assert r.resolve({"Fn::GetAZs": ""}) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert r.resolve({"a": {"Fn::If": ["C", {"Ref": "AWS::NoValue"}, 1]}, "b": [1, {"Ref": "AWS::NoValue"}]}) == {"b": [1]}
    assert r.resolve({"Fn::Or": [{"Fn::Not": [{"Condition": "C"}]}, {"Fn::And": [{"Condition": "C"}]}]}) is True
    with pytest.raises(ConfigError, match=r"^x.Fn::ImportValue: Fn::ImportValue cannot be evaluated locally"):
        r.resolve({"x": {"Fn::ImportValue": "shared"}})
    with pytest.raises(ConfigError, match=r"^y.Ref: Ref 'Nope' names no parameter or resource"):
        r.resolve({"y": {"Ref": "Nope"}})


# ---------------------------------------------------------------- skipped and redirected


def test_nodejs_s3_and_image_functions_are_skipped_with_one_line_each(tmp_path):
    extra = """\
  Web:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: nodejs20.x
      CodeUri: web/
      Handler: index.handler
      Events:
        Clicks:
          Type: SelfManagedKafka
          Properties:
            KafkaBootstrapServers: [broker.internal:9092]
            Topics: [clicks]
            StartingPosition: LATEST
            SourceAccessConfigurations: [{Type: BASIC_AUTH, URI: "arn:aws:secretsmanager:us-east-1:1:secret:x"}]
  Packaged:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: s3://my-bucket/code.zip, Handler: app.handler}
  Container:
    Type: AWS::Lambda::Function
    Properties: {PackageType: Image, Code: {ImageUri: 123.dkr.ecr.us-east-1.amazonaws.com/app:latest}}
"""
    loaded = template.load(_write(tmp_path, _sam(extra=extra)))
    assert set(loaded.project.functions) == {"Orders"}
    assert sorted(loaded.skipped) == [
        "Container: skipped: a container image (PackageType: Image) is not run; triggerfish runs Python handlers "
        "from a local CodeUri directory",
        "Packaged: skipped: its CodeUri is in S3 (s3://my-bucket/code.zip), not on this machine; point CodeUri at "
        "the local directory of the handler",
        "Web: skipped: runtime nodejs20.x is not Python; triggerfish runs Python handlers only",
        "WebClicks: skipped: its function Web is skipped",
    ]
    assert [m.topic for m in loaded.project.mappings] == ["orders"]


def test_msk_event_redirected_by_kafka_bootstrap_and_overrides_file(tmp_path):
    extra = """\
  Cluster:
    Type: AWS::MSK::Cluster
    Properties: {ClusterName: prod-kafka}
  Payments:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Events:
        Msk:
          Type: MSK
          Properties:
            Stream: !Ref Cluster
            Topics: [payments]
            StartingPosition: LATEST
            ConsumerGroupId: payments-g
"""
    path = _write(tmp_path, _sam(extra=extra))
    err = _error(path)
    assert str(err).startswith("Resources.Payments.Properties.Events.Msk.Properties.Stream: the MSK cluster Cluster is "
                               "created by this template and does not exist outside AWS; pass --kafka-bootstrap")
    loaded = template.load(path, kafka_bootstrap=["127.0.0.1:9092"])
    by_topic = {m.topic: m for m in loaded.project.mappings}
    assert by_topic["payments"].bootstrap_servers == ("127.0.0.1:9092",)
    assert by_topic["payments"].event_source_arn == "arn:aws:kafka:" + by_topic["payments"].event_source_arn.split(
        ":", 3)[3] and by_topic["payments"].event_source_arn.endswith(":cluster/prod-kafka/local")
    assert by_topic["payments"].consumer_group_id == "payments-g"
    assert by_topic["orders"].bootstrap_servers == ("127.0.0.1:9092",)  # remote brokers too
    (tmp_path / "o.yaml").write_text("Cluster: {BootstrapServers: ['10.0.0.1:9092']}\n"
                                     "Orders.Stream: {BootstrapServers: ['10.0.0.2:9092']}\n")
    loaded = template.load(path, overrides_file=tmp_path / "o.yaml", kafka_bootstrap=["127.0.0.1:9092"])
    by_topic = {m.topic: m for m in loaded.project.mappings}
    assert by_topic["payments"].bootstrap_servers == ("10.0.0.1:9092",)
    assert by_topic["orders"].bootstrap_servers == ("10.0.0.2:9092",)


def test_secrets_resolve_through_overrides_and_a_template_secret_needs_one(tmp_path):
    extra = """\
  KafkaSecret:
    Type: AWS::SecretsManager::Secret
    Properties: {Name: kafka/orders}
  Billing:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Events:
        Stream:
          Type: SelfManagedKafka
          Properties:
            KafkaBootstrapServers: [broker.internal:9096]
            Topics: [billing]
            StartingPosition: LATEST
            SourceAccessConfigurations: [{Type: SASL_SCRAM_512_AUTH, URI: !Ref KafkaSecret}]
"""
    path = _write(tmp_path, _sam(extra=extra))
    err = _error(path)
    assert str(err) == ("Resources.Billing.Properties.Events.Stream.Properties.SourceAccessConfigurations[0].URI: the "
                        "secret KafkaSecret is created by this template and does not exist outside AWS; give it a "
                        "local value in --overrides (KafkaSecret: {Secret: env:VAR} or {Secret: file://secret.json})")
    (tmp_path / "o.yaml").write_text("KafkaSecret: {Secret: file://secrets/kafka.json}\n")
    loaded = template.load(path, overrides_file=tmp_path / "o.yaml")
    billing = next(m for m in loaded.project.mappings if m.topic == "billing")
    assert billing.source_access_configurations == (
        {"Type": "SASL_SCRAM_512_AUTH", "URI": f"file://{tmp_path / 'secrets' / 'kafka.json'}"},)
    (tmp_path / "o.yaml").write_text("KafkaSecret: {Secret: 'env:BILLING_KAFKA'}\n")
    billing = next(m for m in template.load(path, overrides_file=tmp_path / "o.yaml").project.mappings
                   if m.topic == "billing")
    assert billing.source_access_configurations[0]["URI"] == "env:BILLING_KAFKA"


def test_env_vars_file_has_sam_locals_meaning(tmp_path):
    path = _write(tmp_path, _sam(props="      FunctionName: orders-fn\n"))
    env = tmp_path / "env.json"
    env.write_text(json.dumps({"Parameters": {"STAGE": "local", "TABLE": "t-all", "UNDECLARED": "x"},
                               "Orders": {"TABLE": "t-orders"}}))
    fn = template.load(path, env_vars=env).project.functions["orders-fn"]
    assert fn.environment == {"STAGE": "local", "TABLE": "t-orders"}  # only declared variables are replaced
    env.write_text(json.dumps({"orders-fn": {"STAGE": "by-name"}}))
    assert template.load(path, env_vars=env).project.functions["orders-fn"].environment["STAGE"] == "by-name"


# ---------------------------------------------------------------- errors name the template path


@pytest.mark.parametrize(("events", "props", "expected"), [
    ("            BatchSize: 20000\n", "",
     "Resources.Orders.Properties.Events.Stream.Properties.BatchSize: 1 validation error detected: Value '20000' at "
     "'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000 (allowed 1..10000)"),
    ("            FilterCriteria: {Filters: [{Pattern: '{\"value\": 5'}]}\n", "",
     "Resources.Orders.Properties.Events.Stream.Properties.FilterCriteria.Filters[0].Pattern: "),
    ("            DestinationConfig: {OnFailure: {Type: Kafka, Destination: 'kafka://orders'}}\n", "",
     "Resources.Orders.Properties.Events.Stream.Properties.DestinationConfig.OnFailure.Destination: The Kafka "
     "on-failure destination 'kafka://orders' must differ from the source topic."),
    ("", "      Timeout: 900\n",
     "Resources.Orders.Properties.Timeout: Timeout 900 is above 840 seconds, the limit for functions invoked by a "
     "Kafka event source mapping (use at most 840)"),
    ("", "      Environment: {Variables: {AWS_REGION: x}}\n",
     "Resources.Orders.Properties.Environment.Variables.AWS_REGION: Lambda was unable to configure your environment"),
])
def test_errors_name_the_sam_path_the_value_and_the_fix(tmp_path, events, props, expected):
    err = _error(_write(tmp_path, _sam(events=events, props=props)))
    assert isinstance(err, InvalidParameterError)
    assert str(err).startswith(expected), str(err)


def test_a_value_from_globals_is_blamed_on_globals(tmp_path):
    path = _write(tmp_path, _sam().replace("    Timeout: 30", "    Timeout: 9000"))
    assert str(_error(path)).startswith("Globals.Function.Timeout: 1 validation error detected: Value '9000' at "
                                        "'timeout'")


def test_cloudformation_mapping_errors_name_its_properties(tmp_path):
    path = _write(tmp_path, """\
        Resources:
          Fn:
            Type: AWS::Lambda::Function
            Properties: {Code: src/, Handler: app.handler, Runtime: python3.11}
          Mapping:
            Type: AWS::Lambda::EventSourceMapping
            Properties:
              FunctionName: !GetAtt Fn.Arn
              Topics: [ab]
              StartingPosition: LATEST
              KmsKeyArn: not-an-arn
              SelfManagedEventSource: {Endpoints: {KafkaBootstrapServers: ["b:9092"]}}
        """)
    assert str(_error(path)).startswith("Resources.Mapping.Properties.KmsKeyArn: 1 validation error detected: "
                                        "Value 'not-an-arn' at 'kMSKeyArn'")


def test_translator_rejection_shows_its_message_with_the_resource(tmp_path):
    path = _write(tmp_path, _sam().replace(VPC, ""))
    assert str(_error(path)) == ("Resources: SAM cannot expand this template: Resource with id [Orders] is invalid. "
                                 "Event with id [Stream] is invalid. No SourceAccessConfigurations for self managed "
                                 "kafka event provided. (fix what the message names)")


def test_unreadable_templates(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("Resources:\n  A: [\n")
    assert "line 3, column 1" in str(_error(bad)) and "(not valid YAML)" in str(_error(bad))
    (tmp_path / "cfg.yaml").write_text("Functions: []\n")
    assert "not a template: it has no Resources section" in str(_error(tmp_path / "cfg.yaml"))
    assert "file not found" in str(_error(tmp_path / "missing.yaml"))


# ---------------------------------------------------------------- the command line


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triggerfish", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**os.environ, "COLUMNS": "250"})


def test_invoke_template_by_logical_id_with_env_vars_and_errors_as_one_line(tmp_path):
    _write(tmp_path, _sam(props="      FunctionName: orders-fn\n", extra="""\
  Web:
    Type: AWS::Serverless::Function
    Properties: {Runtime: nodejs20.x, CodeUri: src/, Handler: index.handler}
"""))
    (tmp_path / "env.json").write_text(json.dumps({"Orders": {"TABLE": "from-env-file"}}))
    done = _cli("invoke", "Orders", "--template", "template.yaml", "--env-vars", "env.json", "--event", "-",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["env"]["TABLE"] == "from-env-file" and result["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "orders-fn"
    skipped = _cli("invoke", "Web", "--template", "template.yaml", cwd=tmp_path)
    assert skipped.returncode == 1
    assert skipped.stderr.strip() == ("error: FUNCTION: Web: skipped: runtime nodejs20.x is not Python; triggerfish "
                                      "runs Python handlers only")


def test_template_options_without_template_are_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        template_options.load(tmp_path / "triggerfish.yaml", None, [], None, ["127.0.0.1:9092"], None)
    assert str(info.value) == "--kafka-bootstrap: applies to --template only; pass --template template.yaml, or drop it"
