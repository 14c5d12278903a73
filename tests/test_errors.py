"""The exception tree and how the control API and the bridge answer it on the wire."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from triggerfish import errors
from triggerfish.api.app import create_app as create_api
from triggerfish.api.backend import FunctionInfo
from triggerfish.api.errors import INTERNAL_MESSAGE, lambda_response
from triggerfish.api.metrics import API_REQUESTS
from triggerfish.bridge.app import create_app as create_bridge
from triggerfish.bridge.config import from_properties
from triggerfish.bridge.errors import V2_JSON, status_of
from triggerfish.bridge.services import Services
from triggerfish.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    ConsumerExists,
    ConsumerNotFound,
    FunctionThrottled,
    IncompleteSignatureError,
    InvalidParameterError,
    InvalidRequestContentError,
    InvalidRequestError,
    InvalidSignatureError,
    KafkaClientError,
    MappingConflict,
    MappingInUse,
    MappingNotFound,
    MissingAuthenticationTokenError,
    NotAcceptableError,
    NotFoundError,
    ParameterConflictError,
    RequestTooLargeError,
    SecretError,
    ThrottledError,
    TriggerfishError,
    UnavailableError,
    UnknownOperationError,
    UnprocessableError,
    UnrecognizedClientError,
    UnsupportedMediaTypeError,
    ValidationError,
)

SECRET = "hunter2-do-not-leak"


class Client:
    """Requests straight into an ASGI app (no server, no lifespan)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bridge.test") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


def test_every_exception_is_in_the_one_tree() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, BaseException)]
    assert len(classes) > 30
    assert all(issubclass(c, TriggerfishError) for c in classes)


def test_typed_attributes() -> None:
    assert MappingNotFound("u-1").uuid == "u-1" and MappingNotFound("u-1").resource == "u-1"
    assert isinstance(MappingNotFound("u-1"), NotFoundError)
    assert (ConsumerNotFound("g", "c").group, ConsumerNotFound("g", "c").name) == ("g", "c")
    throttled = FunctionThrottled("f", 2)
    assert isinstance(throttled, ThrottledError) and (throttled.name, throttled.limit, throttled.retry_after) == ("f", 2, 1)
    conflict = ParameterConflictError("EventSourceMappings[1]", "already exists", "merge them")
    assert isinstance(conflict, ConflictError) and isinstance(conflict, ConfigError)
    assert conflict.field == "EventSourceMappings[1]" and conflict.hint == "merge them"
    assert str(conflict) == "EventSourceMappings[1]: already exists (merge them)"
    assert RequestTooLargeError("too big", 10).limit == 10
    assert InvalidRequestError("bad", ["a", "b"]).errors == ["a", "b"]


# ---------------------------------------------------------------- the control API: Lambda's shape


def _lambda(exc: BaseException) -> tuple[int, str, dict[str, Any], dict[str, str]]:
    response = lambda_response(exc)
    return response.status_code, response.headers["x-amzn-ErrorType"], json.loads(response.body), dict(response.headers)


@pytest.mark.parametrize(
    ("exc", "status", "error_type", "body"),
    [
        (MappingNotFound("u"), 404, "ResourceNotFoundException",
         {"Type": "User", "Message": "The resource you requested does not exist."}),
        (NotFoundError("Function not found: arn"), 404, "ResourceNotFoundException",
         {"Type": "User", "Message": "Function not found: arn"}),
        (UnknownOperationError("no such op"), 404, "UnknownOperationException", {"Type": "User", "message": "no such op"}),
        (MappingConflict("exists"), 409, "ResourceConflictException", {"Type": "User", "message": "exists"}),
        (MappingInUse("busy"), 400, "ResourceInUseException", {"Type": "User", "Message": "busy"}),
        (InvalidRequestContentError("not json"), 400, "InvalidRequestContentException",
         {"Type": "User", "message": "not json"}),
        (RequestTooLargeError("too big", 5), 413, "RequestTooLargeException", {"Type": "User", "message": "too big"}),
        (MissingAuthenticationTokenError("m"), 403, "MissingAuthenticationTokenException", {"Type": "User", "message": "m"}),
        (IncompleteSignatureError("i"), 403, "IncompleteSignatureException", {"Type": "User", "message": "i"}),
        (UnrecognizedClientError("u"), 403, "UnrecognizedClientException", {"Type": "User", "message": "u"}),
        (InvalidSignatureError("s"), 403, "InvalidSignatureException", {"Type": "User", "message": "s"}),
        # configuration errors: the field is named unless Lambda's text already names it; the fix is appended
        (InvalidParameterError("BatchSize", "must be positive", "use 1..10000"), 400, "InvalidParameterValueException",
         {"Type": "User", "message": "BatchSize: must be positive (use 1..10000)"}),
        (InvalidParameterError("BatchSize", "BatchSize must be positive"), 400, "InvalidParameterValueException",
         {"Type": "User", "message": "BatchSize must be positive"}),
        (ValidationError("BatchSize", "1 validation error detected", "use 1..10000"), 400, "ValidationException",
         {"Type": "User", "message": "1 validation error detected (use 1..10000)"}),
        (ParameterConflictError("EventSourceMappings[1]", "already exists", "merge them"), 409,
         "ResourceConflictException", {"Type": "User", "message": "already exists (merge them)"}),
        (ConfigError("Topics", "must not be empty"), 400, "InvalidParameterValueException",
         {"Type": "User", "message": "Topics: must not be empty"}),
        # the rest of the tree is the client's configuration too
        (SecretError("secret env:X is not set"), 400, "InvalidParameterValueException",
         {"Type": "User", "message": "secret env:X is not set"}),
        # anything else is a bug: nothing of it reaches the client
        (RuntimeError(SECRET), 500, "ServiceException", {"Type": "Service", "Message": INTERNAL_MESSAGE}),
    ],
)
def test_lambda_wire_shape(exc: BaseException, status: int, error_type: str, body: dict[str, Any]) -> None:
    got_status, got_type, got_body, _ = _lambda(exc)
    assert (got_status, got_type, got_body) == (status, error_type, body)


def test_throttling_says_why_and_when_to_retry() -> None:
    status, error_type, body, headers = _lambda(ThrottledError())
    assert (status, error_type) == (429, "TooManyRequestsException")
    assert body == {"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}
    assert headers["retry-after"] == "1"


class _Backend:
    """A control-API backend whose operations fail the way the test says."""

    region = "us-east-1"
    account_id = "000000000000"

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    def list_functions(self) -> list[FunctionInfo]:
        raise self.failure

    def get_function(self, name: str) -> FunctionInfo | None:
        return None

    async def get_mapping(self, uuid: str) -> dict[str, Any]:
        raise self.failure

    def health(self) -> dict[str, Any]:
        return {}


def _count(operation: str, status: str) -> float:
    value = API_REQUESTS.labels(operation, status)._value.get()
    return float(value)


def test_api_bug_is_a_service_exception_without_detail(caplog: pytest.LogCaptureFixture) -> None:
    client = Client(create_api(_Backend(RuntimeError(f"password={SECRET}"))))
    before = _count("ListFunctions", "500")
    response = client.get("/2015-03-31/functions/")
    assert response.status_code == 500
    assert response.headers["x-amzn-ErrorType"] == "ServiceException" and response.headers["x-amzn-RequestId"]
    assert response.json() == {"Type": "Service", "Message": INTERNAL_MESSAGE}
    assert SECRET not in response.text and "Traceback" not in response.text
    assert _count("ListFunctions", "500") == before + 1
    assert "ListFunctions failed" in caplog.text  # the detail is in the server log


def test_api_typed_error_through_the_exception_handler() -> None:
    client = Client(create_api(_Backend(MappingNotFound("u-1"))))
    before = _count("GetEventSourceMapping", "404")
    response = client.get("/2015-03-31/event-source-mappings/u-1")
    assert response.status_code == 404 and response.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert response.json() == {"Type": "User", "Message": "The resource you requested does not exist."}
    assert response.headers["x-amzn-RequestId"]
    assert _count("GetEventSourceMapping", "404") == before + 1


def test_api_unknown_operation_has_no_request_id() -> None:
    response = Client(create_api(_Backend(RuntimeError()))).get("/2099-01-01/nothing")
    assert response.status_code == 404 and response.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "x-amzn-RequestId" not in response.headers


# ---------------------------------------------------------------- the bridge: Strimzi's shape


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InvalidRequestError("bad"), 400),
        (UnsupportedMediaTypeError("bad type"), 400),
        (AuthenticationError("who?"), 401),
        (AccessDeniedError("denied", "User:x", "Read", "topic:t"), 403),
        (NotFoundError("none"), 404),
        (ConsumerNotFound("g", "c"), 404),
        (NotAcceptableError("accept"), 406),
        (ConflictError("both"), 409),
        (ConsumerExists("g", "c"), 409),
        (UnprocessableError("bad value"), 422),
        (KafkaClientError("broken", 1), 500),
        (UnavailableError("down"), 503),
        (ConfigError("x", "y"), None),
        (RuntimeError("bug"), None),
    ],
)
def test_bridge_status_by_class(exc: BaseException, status: int | None) -> None:
    assert status_of(exc) == status


@pytest.fixture
def bridge() -> Iterator[tuple[Client, Services]]:
    services = Services.build(from_properties({"kafka.bootstrap.servers": "127.0.0.1:1"}, environ={}))
    try:
        yield Client(create_bridge(services)), services
    finally:
        services.close()


def _failing(exc: BaseException) -> Any:
    def fail(*args: object) -> None:
        raise exc

    return fail


def _bridge_count(services: Services, operation: str, status: str) -> float:
    return float(services.metrics.requests.labels(operation, status)._value.get())


@pytest.mark.parametrize("bug", [RuntimeError(f"password={SECRET}"), ConfigError("kafka.x", SECRET)])
def test_bridge_bug_is_strimzis_500_without_detail(bridge: tuple[Client, Services], bug: Exception,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    client, services = bridge
    services.topics.names = _failing(bug)  # type: ignore[method-assign]
    response = client.get("/topics")
    assert response.status_code == 500 and response.headers["content-type"] == V2_JSON
    assert response.content == (b'{"error_code":500,"message":"Internal error in listTopics: '
                                + type(bug).__name__.encode() + b'"}')
    assert SECRET not in response.text
    assert _bridge_count(services, "listTopics", "500") == 1
    assert "listTopics failed" in caplog.text


def test_bridge_typed_error_through_the_exception_handler(bridge: tuple[Client, Services]) -> None:
    client, services = bridge
    services.topics.names = _failing(AccessDeniedError("Kafka denied Describe", "User:x", "Describe", "topic:t"))  # type: ignore[method-assign]
    response = client.get("/topics")
    assert response.status_code == 403 and response.headers["content-type"] == V2_JSON
    assert response.content == b'{"error_code":403,"message":"Kafka denied Describe"}'
    assert _bridge_count(services, "listTopics", "403") == 1


def test_bridge_validation_errors_are_listed(bridge: tuple[Client, Services]) -> None:
    client, _ = bridge
    response = client.post("/consumers/g/instances/c/positions", content=b"{}",
                           headers={"content-type": "text/plain"})
    assert response.status_code == 404  # the instance is looked up first
    response = client.get("/topics/t/partitions/x")
    assert response.status_code == 400
    assert response.json() == {"error_code": 400, "message": "Validation error on: Schema validation error",
                               "validation_errors": ["Instance type string is invalid. Expected integer"]}
