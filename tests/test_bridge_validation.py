"""Strimzi's request validation without Kafka: the Vert.x json-schema output units ``validation_errors`` lists,
and Java topic patterns rewritten for librdkafka's POSIX regexes."""

from __future__ import annotations

import re

import pytest

from triggerfish.bridge.patterns import posix_regex
from triggerfish.bridge.validation import check_body, check_parameters, errors_of
from triggerfish.errors import InvalidRequestError

JSON = "application/vnd.kafka.json.v2+json"
V2 = "application/vnd.kafka.v2+json"
RECORDS = ['Property "records" does not match schema', "Items did not match schema", "A subschema had errors"]
RECORDS_AGAIN = 'Property "records" does not match additional properties schema'


def _errors(operation: str, body: str, ctype: str = JSON) -> list[str]:
    with pytest.raises(InvalidRequestError) as info:
        check_body(operation, ctype, body.encode())
    assert str(info.value) == "Validation error on: Schema validation error"
    return info.value.errors


@pytest.mark.parametrize(("operation", "body", "expected"), [
    # the units Strimzi 1.2 answers with, taken from the real bridge
    ("sendToPartition", '{"records":[{"value":"x","partition":0}]}',
     [*RECORDS, 'Property "partition" does not match additional properties schema', RECORDS_AGAIN]),
    ("send", '{"records":[{"key":"k"}]}', [*RECORDS, 'Instance does not have required property "value"', RECORDS_AGAIN]),
    ("send", '{"records":[{"value":"x","foo":1}]}',
     [*RECORDS, 'Property "foo" does not match additional properties schema', RECORDS_AGAIN]),
    ("send", '{"records":{}}', ['Property "records" does not match schema', "Instance type object is invalid. Expected array",
                                RECORDS_AGAIN]),
    ("send", '{"records":[{"value":"x","headers":[{"key":"a"}]}]}',
     [*RECORDS, 'Property "headers" does not match schema', "A subschema had errors", "Items did not match schema",
      "A subschema had errors", 'Instance does not have required property "value"',
      'Property "headers" does not match additional properties schema', RECORDS_AGAIN]),
    ("send", "[]", ["Instance type array is invalid. Expected object"]),
    ("createConsumer", '{"name":"c","enable.auto.commit":"foo"}',
     ['Property "enable.auto.commit" does not match schema', "Instance type string is invalid. Expected boolean",
      'Property "enable.auto.commit" does not match additional properties schema']),
    ("createConsumer", '{"foo":"bar"}', ['Property "foo" does not match additional properties schema']),
])
def test_body_errors_are_strimzis(operation: str, body: str, expected: list[str]) -> None:
    assert _errors(operation, body, V2 if operation == "createConsumer" else JSON) == expected


def test_a_value_of_no_allowed_type_lists_every_one_of_branch() -> None:
    errors = _errors("send", '{"records":[{"value":1}]}')
    assert errors[3:10] == ['Property "value" does not match schema', "A subschema had errors",
                            "Instance does not match exactly one subschema (0 matches)",
                            "Instance type number is invalid. Expected array", "Instance type number is invalid. Expected object",
                            "Instance type number is invalid. Expected string", "Instance type number is invalid. Expected null"]


def test_valid_bodies_and_bodies_left_to_the_handler_pass() -> None:
    check_body("send", JSON, b'{"records":[{"value":{"a":1},"key":[1],"partition":2,"timestamp":1,"headers":[]}]}')
    check_body("send", JSON, b"{}")  # no records: the handler's 422, as Strimzi answers it
    check_body("send", JSON, b"{not json")  # the handler's own 400
    check_body("send", "text/plain", b"[]")  # a content type the spec does not list: the handler's answer
    check_body("createConsumer", V2, b"")  # an optional body may be missing


def test_a_missing_required_body_is_strimzis_400() -> None:
    for operation in ("subscribe", "send", "seek", "createTopic"):
        with pytest.raises(InvalidRequestError) as info:
            check_body(operation, None, b"")
        assert str(info.value) == "Validation error on: The related request does not contain the required body."
        assert info.value.errors == []


@pytest.mark.parametrize(("operation", "path", "query", "expected"), [
    ("sendToPartition", {"topicname": "t", "partitionid": "karel"}, {}, "Instance type string is invalid. Expected integer"),
    ("sendToPartition", {"topicname": "t", "partitionid": "-1"}, {}, "-1 is less than 0"),
    ("getOffsets", {"topicname": "t", "partitionid": "-3"}, {}, "-3 is less than 0"),
    ("send", {"topicname": "t"}, {"async": "wrong"}, "Instance type string is invalid. Expected boolean"),
    ("poll", {"groupid": "g", "name": "n"}, {"timeout": "1.5"}, "Instance type number is invalid. Expected integer"),
])
def test_parameter_errors_are_strimzis(operation: str, path: dict[str, str], query: dict[str, str], expected: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_parameters(operation, path, query)
    assert info.value.errors == [expected]


def test_good_parameters_pass() -> None:
    check_parameters("sendToPartition", {"topicname": "t", "partitionid": "0"}, {"async": "TRUE"})
    check_parameters("poll", {"groupid": "g", "name": "n"}, {"timeout": "100", "max_bytes": "10"})


def test_errors_of_keeps_integers_and_minimums_apart() -> None:
    assert errors_of(3.0, {"type": "integer"}) == []
    assert errors_of(None, {"type": ["integer", "null"]}) == []
    assert errors_of("x", {"type": ["integer", "null"]}) == ["Instance type string is invalid. Expected integer, null"]


@pytest.mark.parametrize(("java", "posix"), [
    (r"my-topic-\d", "my-topic-[0-9]"),
    (r"t\.\w+-\D", r"t\.[A-Za-z0-9_]+-[^0-9]"),
    (r"a[\d_]+(?:x|y)", "a[0-9_]+(x|y)"),
    (r"[]\d]", r"[]0-9]"),
    ("plain.*", "plain.*"),
])
def test_java_patterns_become_posix(java: str, posix: str) -> None:
    assert posix_regex(java) == posix


@pytest.mark.parametrize("name", ["my-topic-0", "my-topic-7", "my-topic-x", "my-topic-10", "other"])
def test_rewritten_patterns_match_what_java_matches(name: str) -> None:
    java = r"my-topic-\d"
    assert (re.fullmatch(posix_regex(java), name) is not None) == (re.fullmatch(java, name) is not None)
