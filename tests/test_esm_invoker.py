"""Invoking a mapping's function with a batch (``esm/invoker.py``): a real function runtime, no Kafka."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from esm_fakes import records
from esm_helpers import function_config, write_handler
from triggerfish.esm.event import EventBuilder
from triggerfish.esm.invoker import Invoker
from triggerfish.functions.runtime import FunctionRuntime

HANDLERS = """
def ok(event, context):
    return {"batchItemFailures": [], "records": sum(len(v) for v in event["records"].values())}

def fail(event, context):
    raise ValueError("poison")
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionRuntime]:
    code = write_handler(tmp_path_factory.mktemp("invoker"), "h", HANDLERS)
    rt = FunctionRuntime([function_config(code, f"h.{name}", name) for name in ("ok", "fail")])
    yield rt
    rt.close()


def invoker(runtime: FunctionRuntime, function: str, parse_response: bool = True) -> Invoker:
    return Invoker(runtime, function, EventBuilder("SelfManagedKafka", ["b1:9092"]), parse_response=parse_response)


def test_a_successful_invoke_gives_the_parsed_response(runtime: FunctionRuntime) -> None:
    outcome, result = invoker(runtime, "ok").invoke(records(3))
    assert not outcome.failed and outcome.payload == {"batchItemFailures": [], "records": 3}
    assert result is not None and result.ok
    outcome, _ = invoker(runtime, "ok", parse_response=False).invoke(records(1))
    assert outcome.payload is None  # not decoded unless ReportBatchItemFailures needs it


def test_a_handler_error_is_a_failed_outcome(runtime: FunctionRuntime) -> None:
    outcome, result = invoker(runtime, "fail").invoke(records(2))
    assert outcome.failed and outcome.error_type == "ValueError" and outcome.error_message == "poison"
    assert result is not None and result.function_error == "Unhandled"


def test_a_missing_function_is_a_failed_outcome(runtime: FunctionRuntime) -> None:
    outcome, result = invoker(runtime, "gone").invoke(records(1))
    assert outcome.failed and outcome.error_type == "ResourceNotFoundException" and result is None
