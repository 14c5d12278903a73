"""Schemas that reference other subjects (Confluent ``references``) against the real registry (Apicurio):
an Avro record using a named type registered on its own, a Protobuf message importing another file."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from triggerfish.schemas import SchemaDecoder, open_registry

pytestmark = pytest.mark.kafka  # needs the registry, started like the broker


def test_avro_schema_with_a_reference(schema_registry: str) -> None:
    client = SchemaRegistryClient({"url": schema_registry})
    tag = uuid.uuid4().hex[:8]
    money = {"type": "record", "name": "Money", "namespace": f"ref{tag}",
             "fields": [{"name": "cents", "type": "long"}, {"name": "currency", "type": "string"}]}
    client.register_schema(f"money-{tag}", Schema(json.dumps(money), "AVRO"))
    order = {"type": "record", "name": "Order", "namespace": f"ref{tag}",
             "fields": [{"name": "id", "type": "string"}, {"name": "total", "type": f"ref{tag}.Money"}]}
    schema = Schema(json.dumps(order), "AVRO", [SchemaReference(f"ref{tag}.Money", f"money-{tag}", 1)])
    serialize = AvroSerializer(client, schema, conf={"auto.register.schemas": True})
    value = {"id": "o-1", "total": {"cents": 1250, "currency": "EUR"}}
    framed = serialize(value, SerializationContext(f"orders-{tag}", MessageField.VALUE))
    decoded = SchemaDecoder(open_registry(schema_registry)).decode(framed)
    assert decoded.value == value and decoded.data_format == "AVRO"


def _protobuf_classes(tag: str) -> Any:
    money = descriptor_pb2.FileDescriptorProto(name=f"money{tag}.proto", package=f"ref{tag}", syntax="proto3")
    m = money.message_type.add(name="Money")
    m.field.add(name="cents", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    order = descriptor_pb2.FileDescriptorProto(name=f"order{tag}.proto", package=f"ref{tag}", syntax="proto3",
                                               dependency=[f"money{tag}.proto"])
    o = order.message_type.add(name="Order")
    o.field.add(name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    o.field.add(name="total", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                type_name=f".ref{tag}.Money", label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(money)
    pool.Add(order)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName(f"ref{tag}.Order")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"ref{tag}.Money")))


def test_protobuf_schema_importing_another_registered_file(schema_registry: str) -> None:
    tag = uuid.uuid4().hex[:8]
    order_cls, money_cls = _protobuf_classes(tag)
    client = SchemaRegistryClient({"url": schema_registry})
    serialize = ProtobufSerializer(order_cls, client, {"use.deprecated.format": False})
    framed = serialize(order_cls(id="o-1", total=money_cls(cents=1250)),
                       SerializationContext(f"orders-{tag}", MessageField.VALUE))
    decoded = SchemaDecoder(open_registry(schema_registry)).decode(framed)
    assert decoded.value == {"id": "o-1", "total": {"cents": "1250"}}  # int64 as a string: protobuf's JSON mapping
    assert decoded.data_format == "PROTOBUF"
