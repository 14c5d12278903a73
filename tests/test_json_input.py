"""Untrusted JSON is decoded by one helper: nesting past the limit is a ValueError (each caller's 400),
never a RecursionError; and every decoder of outside JSON goes through it."""

from __future__ import annotations

import json
import sys

import pytest

from triggerfish.bridge.formats import Format, parse_consumer
from triggerfish.bridge.produce_body import parse_records
from triggerfish.errors import InvalidParameterError, InvalidRequestError
from triggerfish.esm.config import MappingConfig
from triggerfish.functions.fencing.webhook import parse_notification
from triggerfish.functions.invocation import InvokeResult
from triggerfish.json_input import MAX_DEPTH, NestingError, loads


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("text", [nested(100_000), nested_objects(100_000), nested(MAX_DEPTH + 1),
                                  nested_objects(MAX_DEPTH + 1), "[" * 100_000])
def test_too_deep_is_a_value_error_not_a_recursion_error(text: str) -> None:
    for data in (text, text.encode()):
        with pytest.raises(NestingError, match=f"nesting depth exceeds the maximum allowed \\({MAX_DEPTH}\\)"):
            loads(data)
    assert issubclass(NestingError, ValueError)  # what every caller already answers as bad JSON


def test_the_limit_is_exact_and_independent_of_the_callers_stack() -> None:
    assert loads(nested(MAX_DEPTH)) is not None
    assert loads(nested(3), max_depth=3) == [[[1]]]
    with pytest.raises(NestingError):
        loads(nested(4), max_depth=3)

    def at_depth(frames: int) -> object:  # called deep in a stack, as a request handler is
        return at_depth(frames - 1) if frames else loads(nested(MAX_DEPTH - 200))

    assert at_depth(200) is not None
    assert sys.getrecursionlimit() == 1000


def test_brackets_inside_strings_and_wide_documents_are_not_depth() -> None:
    wide = json.dumps({"records": [{"value": {"k": [i]}} for i in range(5000)]})
    assert len(loads(wide)["records"]) == 5000
    assert loads(json.dumps({"s": "[" * 10_000})) == {"s": "[" * 10_000}
    assert loads(b"[]") == [] and loads("7") == 7


def test_invalid_json_is_still_invalid_json() -> None:
    with pytest.raises(ValueError) as info:
        loads("{not json")
    assert not isinstance(info.value, NestingError)


def test_bridge_bodies_are_validation_errors() -> None:
    for body in (nested(100_000).encode(), b'{"records":[{"value":' + nested(600).encode() + b"}]}"):
        with pytest.raises(InvalidRequestError) as info:
            parse_records(body, Format.JSON)
        assert info.value.errors == [f"Request body is not valid JSON: JSON nesting depth exceeds the maximum "
                                     f"allowed ({MAX_DEPTH})"]
    with pytest.raises(InvalidRequestError):
        parse_consumer(nested_objects(100_000).encode())
    # deep but within the limit is an ordinary record
    assert parse_records(b'{"records":[{"value":' + nested(100).encode() + b"}]}", Format.JSON)[0].value is not None


def test_webhook_and_filter_patterns_and_function_results() -> None:
    with pytest.raises(InvalidRequestError, match="nesting depth exceeds"):
        parse_notification(nested_objects(100_000).encode())
    body = {"FunctionName": "f", "Topics": ["orders"], "StartingPosition": "LATEST",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
            "FilterCriteria": {"Filters": [{"Pattern": nested(2000)}]}}
    with pytest.raises(InvalidParameterError) as info:
        MappingConfig.from_dict(body)
    assert info.value.field == "FilterCriteria.Filters[0].Pattern"
    assert "Invalid filter pattern definition." in str(info.value) and "nesting depth" in str(info.value)
    failed = InvokeResult("f", "r", nested(100_000).encode(), "Unhandled", 1.0)
    assert failed.error is not None and failed.error["errorType"] == "Unknown"
