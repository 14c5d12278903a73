"""Every operation the server claims is routed at the method and path botocore's model gives it."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match

from triggerfish.api.app import routes
from triggerfish.api.shapes import operation

OPERATIONS = [
    "CreateEventSourceMapping", "GetEventSourceMapping", "ListEventSourceMappings", "UpdateEventSourceMapping",
    "DeleteEventSourceMapping", "GetFunction", "GetFunctionConfiguration", "ListFunctions", "Invoke",
    "GetFunctionConcurrency", "GetFunctionUrlConfig", "ListFunctionUrlConfigs",
]


@pytest.mark.parametrize("name", OPERATIONS)
def test_model_path_is_routed(name: str) -> None:
    http = operation(name).http
    path = http["requestUri"].split("?")[0]
    path = re.sub(r"\{FunctionName\}", "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af", path)
    path = re.sub(r"\{UUID\}", "6f1c0b7e-1111-4222-8333-444455556666", path)
    assert "{" not in path
    scope = {"type": "http", "method": http["method"], "path": path, "root_path": ""}
    matched = [r for r in routes() if r.matches(scope)[0] == Match.FULL]
    assert matched, f"{http['method']} {path} is not routed"
    assert matched[0].name.startswith(f"{name}:"), f"{http['method']} {path} goes to {matched[0].name}"

