"""Schemas that reference other subjects (Confluent ``references``) against the real registry (Apicurio):
an Avro record using a named type registered on its own, a Protobuf message importing another file (as a
serialized descriptor or as .proto text), a JSON Schema whose ``$ref`` names another subject."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.common.serde import SchemaId
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from triggerfish.schemas import DESERIALIZATION_ERROR, RecordSchemaError, SchemaDecoder, open_registry

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


def protobuf_order_classes(tag: str) -> Any:
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
    order_cls, money_cls = protobuf_order_classes(tag)
    client = SchemaRegistryClient({"url": schema_registry})
    serialize = ProtobufSerializer(order_cls, client, {"use.deprecated.format": False})
    framed = serialize(order_cls(id="o-1", total=money_cls(cents=1250)),
                       SerializationContext(f"orders-{tag}", MessageField.VALUE))
    decoded = SchemaDecoder(open_registry(schema_registry)).decode(framed)
    assert decoded.value == {"id": "o-1", "total": {"cents": "1250"}}  # int64 as a string: protobuf's JSON mapping
    assert decoded.data_format == "PROTOBUF"


def _json_schema(properties: dict[str, Any], required: list[str], **extra: Any) -> str:
    return json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                       "properties": properties, "required": required, **extra})


def test_json_schema_ref_to_other_subjects_resolved_recursively_and_cached(schema_registry: str) -> None:
    client = SchemaRegistryClient({"url": schema_registry})
    tag = uuid.uuid4().hex[:8]
    client.register_schema(f"address-{tag}", Schema(_json_schema({"city": {"type": "string"}}, ["city"]), "JSON"))
    address = [SchemaReference("address.json", f"address-{tag}", 1)]
    customer = _json_schema({"name": {"type": "string"}, "address": {"$ref": "address.json"}}, ["name", "address"])
    client.register_schema(f"customer-{tag}", Schema(customer, "JSON", address))
    refs = [SchemaReference("customer.json", f"customer-{tag}", 1)]
    order = _json_schema({"id": {"type": "string"}, "customer": {"$ref": "customer.json"}}, ["id", "customer"])
    invoice = _json_schema({"to": {"$ref": "customer.json#/properties/address"}}, ["to"])
    topic = f"orders-{tag}"
    serialize = JSONSerializer(Schema(order, "JSON", refs), client, conf={"auto.register.schemas": True})
    value = {"id": "o-1", "customer": {"name": "ann", "address": {"city": "Lyon"}}}
    framed = serialize(value, SerializationContext(topic, MessageField.VALUE))
    invoice_id = client.register_schema(f"invoices-{tag}-value", Schema(invoice, "JSON", refs))

    registry = open_registry(schema_registry)
    asked: list[tuple[str, int]] = []
    client_of = registry.client  # type: ignore[attr-defined]
    get_version = client_of.get_version

    def counted(subject: str, version: int, **kw: Any) -> Any:
        asked.append((subject, version))
        return get_version(subject, version, **kw)
    client_of.get_version = counted
    decoder = SchemaDecoder(registry)
    decoded = decoder.decode(framed)
    assert decoded.value == value and decoded.data_format == "JSON"
    assert decoder.decode(b"\x00" + invoice_id.to_bytes(4, "big") + b'{"to": {"city": "Oslo"}}').value == {
        "to": {"city": "Oslo"}}
    assert asked == [(f"customer-{tag}", 1), (f"address-{tag}", 1)]  # each subject version asked for once

    wrong = framed[:5] + json.dumps({"id": "o-2", "customer": {"name": "bo", "address": {}}}).encode()
    with pytest.raises(RecordSchemaError, match="does not match the schema at customer/address: 'city' is a "
                                                "required property") as caught:
        decoder.decode(wrong)
    assert caught.value.condition == DESERIALIZATION_ERROR


def test_json_schema_ref_to_no_reference_is_a_one_line_error_naming_the_ref(schema_registry: str) -> None:
    client = SchemaRegistryClient({"url": schema_registry})
    tag = uuid.uuid4().hex[:8]
    schema_id = client.register_schema(f"lonely-{tag}", Schema(
        _json_schema({"customer": {"$ref": "customer.json"}}, ["customer"]), "JSON"))
    with pytest.raises(RecordSchemaError) as caught:
        SchemaDecoder(open_registry(schema_registry)).decode(b"\x00" + schema_id.to_bytes(4, "big") + b'{"customer": 1}')
    message = str(caught.value)
    assert f"schema registry {schema_registry}: schema id {schema_id}: its $ref 'customer.json' resolves to none of " \
           "its references (none)" in message and "\n" not in message
    assert caught.value.condition == DESERIALIZATION_ERROR


def test_protobuf_text_importing_another_subject_registered_as_text(schema_registry: str) -> None:
    """What Java and Go producers register: .proto text, imports as references (Apicurio gives the text back)."""
    tag = uuid.uuid4().hex[:8]
    order_cls, money_cls = protobuf_order_classes(tag)
    client = SchemaRegistryClient({"url": schema_registry})
    money = f'syntax = "proto3";\npackage ref{tag};\nmessage Money {{ int64 cents = 1; }}\n'
    client.register_schema(f"money-{tag}", Schema(money, "PROTOBUF"))
    order = (f'syntax = "proto3";\npackage ref{tag};\nimport "money{tag}.proto";\n'
             "message Order { string id = 1; Money total = 2; }\n")
    schema_id = client.register_schema(f"orders-{tag}-value", Schema(
        order, "PROTOBUF", [SchemaReference(f"money{tag}.proto", f"money-{tag}", 1)]))
    assert "message Order" in str(client.get_schema(schema_id, fmt="serialized").schema_str)  # text, not a descriptor
    framed = SchemaId("PROTOBUF", schema_id, None, [0]).id_to_bytes() + order_cls(
        id="o-1", total=money_cls(cents=99)).SerializeToString()
    decoded = SchemaDecoder(open_registry(schema_registry)).decode(framed)
    assert decoded.value == {"id": "o-1", "total": {"cents": "99"}}
