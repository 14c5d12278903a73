"""What the control API needs from the engine, as a Protocol, in Lambda's own vocabulary.

The HTTP layer (mappings.py, functions.py, urls.py) speaks only this; ``triggerfish.api.engine``
adapts the real engine and function runtime to it. Mapping values are Lambda's
``EventSourceMappingConfiguration`` dicts; request fields arrive exactly as the client sent them.
Failures are ``triggerfish.errors`` exceptions (NotFoundError, ThrottledError, InvalidParameterError
with Lambda's own text in ``.lambda_message``, ...); ``triggerfish.api.errors`` answers them in
Lambda's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class FunctionInfo:
    """A function as the API shows it."""

    name: str
    configuration: dict[str, Any]  # Lambda's FunctionConfiguration
    code_location: str | None = None
    url_auth_type: str | None = None  # "NONE" or "AWS_IAM" when the function has a URL
    url_invoke_mode: str = "BUFFERED"
    url_cors: dict[str, Any] | None = None
    reserved_concurrency: int | None = None
    created: float = 0.0


@dataclass(frozen=True)
class InvokeOutcome:
    """One synchronous invocation: the response payload, Lambda's error flag and the handler's log."""

    payload: bytes
    function_error: str | None = None  # "Unhandled" when the handler raised, timed out or crashed
    log: str = ""  # the invocation's whole log, START line to REPORT line
    request_id: str = ""


@dataclass(frozen=True)
class TaggedResource:
    """What a tagging operation names: ``kind`` is ``function`` or ``event-source-mapping``, ``name`` the
    function's name or the mapping's UUID, ``arn`` the resource's ARN."""

    kind: str
    name: str
    arn: str


class Backend(Protocol):
    region: str
    account_id: str

    def list_functions(self) -> list[FunctionInfo]: ...

    def get_function(self, name: str) -> FunctionInfo | None: ...

    async def invoke(self, name: str, payload: bytes, *, wait: bool = True) -> InvokeOutcome:
        """Run one invocation; ``wait=False``: ThrottledError when the function has no free slot
        (its ReservedConcurrentExecutions are taken, by event source mapping batches too)."""
        ...

    async def create_mapping(self, request: dict[str, Any]) -> dict[str, Any]: ...

    async def get_mapping(self, uuid: str) -> dict[str, Any]: ...

    async def list_mappings(
        self, function_name: str | None = None, event_source_arn: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def update_mapping(self, uuid: str, request: dict[str, Any]) -> dict[str, Any]: ...

    async def delete_mapping(self, uuid: str) -> dict[str, Any]: ...

    async def resource_tags(self, resource: TaggedResource) -> dict[str, str]:
        """A function's or mapping's tags; NotFoundError when it does not exist."""
        ...

    async def set_resource_tags(self, resource: TaggedResource, tags: dict[str, str]) -> None:
        """Replace the resource's whole tag set (kept across restarts, seen by every replica)."""
        ...

    def health(self) -> dict[str, Any]: ...
