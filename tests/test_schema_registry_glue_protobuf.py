"""Protobuf schemas in an AWS Glue registry (a real moto server): Glue keeps the ``.proto`` text, and records
are framed as AWS's serializer frames them (awslabs/aws-glue-schema-registry ProtobufWireFormatEncoder): the
18-byte Glue header, then the message's index as an unsigned varint, then the message bytes. The index
counts all the file's messages, nested ones too, sorted by full name (MessageIndexFinder)."""

from __future__ import annotations

import base64
import json
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.internal.encoder import _VarintBytes  # protobuf's own varint writer (writeUInt32NoTag)
from prometheus_client import REGISTRY

from esm_helpers import RECORDER, function_config, mapping_config, produce, read_invocations, wait_until, write_handler
from triggerfish.schemas import DESERIALIZATION_ERROR, RecordSchemaError, SchemaDecoder, open_registry
from triggerfish.schemas.wire import glue_frame

pytestmark = pytest.mark.kafka

# As a Glue producer registers it: .proto text, several messages, one nested, one imported well-known type
PROTO = """// Proto schema formatted by Wire, do not edit.
syntax = "proto3";
package shop;

import "google/protobuf/timestamp.proto";

message Order {
  string id = 1;
  int32 qty = 2;
  Line line = 3;
  google.protobuf.Timestamp at = 4;

  message Line {
    string sku = 1;
  }
}

message Customer {
  string name = 1;
}
"""
#: AWS's message indexes for PROTO: every message by full name, sorted
CUSTOMER, ORDER, LINE = 0, 1, 2


def classes() -> dict[str, Any]:
    """The producer's message classes, built from a descriptor written by hand for PROTO (not from its text)."""
    t = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="shop/order.proto", package="shop", syntax="proto3",
                                            dependency=["google/protobuf/timestamp.proto"])
    order = fd.message_type.add(name="Order")
    order.field.add(name="id", number=1, type=t.TYPE_STRING, label=t.LABEL_OPTIONAL)
    order.field.add(name="qty", number=2, type=t.TYPE_INT32, label=t.LABEL_OPTIONAL)
    order.field.add(name="line", number=3, type=t.TYPE_MESSAGE, type_name=".shop.Order.Line", label=t.LABEL_OPTIONAL)
    order.field.add(name="at", number=4, type=t.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp",
                    label=t.LABEL_OPTIONAL)
    order.nested_type.add(name="Line").field.add(name="sku", number=1, type=t.TYPE_STRING, label=t.LABEL_OPTIONAL)
    fd.message_type.add(name="Customer").field.add(name="name", number=1, type=t.TYPE_STRING, label=t.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    pool.Add(fd)
    found = {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"shop.{n}"))
             for n in ("Order", "Customer", "Order.Line")}
    found["fd"] = fd
    return found


def aws_framed(version: str, index: int, message: Any, *, compress: bool = False) -> bytes:
    """A record as AWS's Glue serializer writes it (compression covers the index and the message)."""
    return glue_frame(version, _VarintBytes(index) + message.SerializeToString(), compress=compress)


def glue_protobuf(definition: str = PROTO) -> tuple[str, str]:
    name = f"reg-{uuid.uuid4().hex[:8]}"
    glue = boto3.client("glue", region_name="us-east-1")
    arn = glue.create_registry(RegistryName=name)["RegistryArn"]
    version = glue.create_schema(RegistryId={"RegistryName": name}, SchemaName="orders", DataFormat="PROTOBUF",
                                 Compatibility="NONE", SchemaDefinition=definition)["SchemaVersionId"]
    return arn, version


def test_decoder_compiles_the_proto_text_and_picks_the_message_by_aws_index(moto_server: str) -> None:
    arn, version = glue_protobuf()
    c = classes()
    decoder = SchemaDecoder(open_registry(arn))
    order = c["Order"](id="o-1", qty=3, line=c["Order.Line"](sku="s-9"))
    order.at.FromSeconds(1_700_000_000)
    for compress in (False, True):
        decoded = decoder.decode(aws_framed(version, ORDER, order, compress=compress))
        assert decoded.value == {"id": "o-1", "qty": 3, "line": {"sku": "s-9"}, "at": "2023-11-14T22:13:20Z"}
        assert (decoded.data_format, decoded.schema_id) == ("PROTOBUF", version)
        assert decoded.payload == _VarintBytes(ORDER) + order.SerializeToString()  # SOURCE keeps the index
    assert decoder.decode(aws_framed(version, CUSTOMER, c["Customer"](name="ann"))).value == {"name": "ann"}
    assert decoder.decode(aws_framed(version, LINE, c["Order.Line"](sku="x"))).value == {"sku": "x"}
    with pytest.raises(RecordSchemaError, match=f"Glue registry {arn}: schema id {version} .*message index 7 is not "
                                                "in the schema") as caught:
        decoder.decode(aws_framed(version, 7, order))
    assert caught.value.condition == DESERIALIZATION_ERROR


def test_a_proto_text_that_does_not_compile_names_the_version_line_and_fix(moto_server: str) -> None:
    arn, version = glue_protobuf('syntax = "proto3";\nmessage Broken { strin a = 1 }\n')
    decoder = SchemaDecoder(open_registry(arn))
    with pytest.raises(RecordSchemaError) as caught:
        decoder.decode(glue_frame(version, b"\x00"))
    message = str(caught.value)
    assert caught.value.condition == DESERIALIZATION_ERROR
    assert f"Glue registry {arn}: schema version {version}: the Protobuf schema does not compile: line 2" in message
    assert "fix the schema in the registry" in message and "\n" not in message


def _powertools_handler(fd: descriptor_pb2.FileDescriptorProto) -> str:
    serialized = base64.b64encode(fd.SerializeToString()).decode()
    return f'''
import base64, json, os
from aws_lambda_powertools.utilities.kafka import kafka_consumer, SchemaConfig
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

def _order():
    pool = descriptor_pool.DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode({serialized!r})))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))

SOURCE = os.environ["RECORD_FORMAT"] == "SOURCE"
# SOURCE: Powertools decodes the bytes with the message class (it skips Glue's one-byte message index);
# JSON: the value is the JSON text, read by its default deserializer
config = SchemaConfig(value_schema_type="PROTOBUF", value_schema=_order()) if SOURCE else None

@kafka_consumer(schema_config=config)
def handler(event, context):
    rows = []
    for r in event.records:
        value = r.value if SOURCE else json.loads(r.value)
        rows.append({{"id": value["id"], "qty": value["qty"], "line": value.get("line"),
                     "meta": [r.value_schema_metadata.data_format, r.value_schema_metadata.schema_id]}})
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(rows) + "\\n")
'''


def test_engine_delivers_glue_protobuf_as_json_and_source_read_by_powertools(
        moto_server: str, kafka: Any, make_topic: Any, running_engine: Any, tmp_path: Path) -> None:
    arn, version = glue_protobuf()
    c = classes()
    topic = make_topic(prefix="sr-glue-pb")
    orders = [c["Order"](id="a-1", qty=1, line=c["Order.Line"](sku="s-1")), c["Order"](id="a-2", qty=2)]
    produce(kafka.bootstrap, topic, [aws_framed(version, ORDER, orders[0]),
                                     aws_framed(version, ORDER, orders[1], compress=True),
                                     glue_frame(version, b"\x01\xff\xff")])  # not an Order: DESERIALIZATION_ERROR
    code = write_handler(tmp_path, "pt", _powertools_handler(c["fd"]))
    config = {"SchemaRegistryURI": arn, "SchemaValidationConfigs": [{"Attribute": "VALUE"}]}
    want = [{"id": "a-1", "qty": 1, "line": {"sku": "s-1"}, "meta": ["PROTOBUF", version]},
            {"id": "a-2", "qty": 2, "line": None, "meta": ["PROTOBUF", version]}]
    for record_format in ("SOURCE", "JSON"):
        out = tmp_path / f"{record_format}.jsonl"
        name = f"pt-{record_format.lower()}"
        fn = function_config(code, "pt.handler", name=name, Environment={"Variables": {
            "OUT": str(out), "RECORD_FORMAT": record_format}})
        engine = running_engine([fn], [mapping_config(topic, kafka.bootstrap, name, SelfManagedKafkaEventSourceConfig={
            "SchemaRegistryConfig": {**config, "EventRecordFormat": record_format}})])
        assert wait_until(partial(_rows, out), message=record_format) == want, record_format
        labels = {"uuid": engine.uuids[0], "function": name}
        wait_until(partial(REGISTRY.get_sample_value, "triggerfish_esm_schema_registry_errors_total", labels),
                   message="the damaged record counted")
        assert REGISTRY.get_sample_value("triggerfish_esm_schema_registry_errors_total", labels) == 1


def _rows(out: Path) -> list[Any]:
    return [r for line in out.read_text().splitlines() for r in json.loads(line)] if out.exists() else []


def test_engine_json_event_carries_each_message_type_decoded(
        moto_server: str, kafka: Any, make_topic: Any, running_engine: Any, tmp_path: Path) -> None:
    arn, version = glue_protobuf()
    c = classes()
    topic = make_topic(prefix="sr-glue-pb-json")
    produce(kafka.bootstrap, topic, [aws_framed(version, CUSTOMER, c["Customer"](name="ann")),
                                     aws_framed(version, ORDER, c["Order"](id="o-1", qty=5))])
    out = tmp_path / "out.jsonl"
    fn = function_config(write_handler(tmp_path, "rec", RECORDER), Environment={"Variables": {"OUT": str(out)}})
    running_engine([fn], [mapping_config(topic, kafka.bootstrap, SelfManagedKafkaEventSourceConfig={
        "SchemaRegistryConfig": {"SchemaRegistryURI": arn, "EventRecordFormat": "JSON"}})])
    got = wait_until(lambda: len(rs := [r for inv in read_invocations(out) for rs in inv["event"]["records"].values()
                                        for r in rs]) >= 2 and rs, message="2 records")
    assert [json.loads(base64.b64decode(r["value"])) for r in got] == [{"name": "ann"}, {"id": "o-1", "qty": 5}]
