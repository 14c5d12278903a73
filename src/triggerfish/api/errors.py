"""Lambda's error responses: which wire shape each class of ``triggerfish.errors`` answers with.

Lambda (rest-json) names the error in the ``x-amzn-ErrorType`` header and answers a JSON body with
``"Type": "User"`` and the message under ``message`` or ``Message`` (the service model spells it
differently per exception; botocore reads either). ``TooManyRequestsException`` adds ``Reason`` and
a ``Retry-After`` header. An error is looked up along its class's MRO, so the most specific entry
wins; anything that is not a ``TriggerfishError`` is a bug and answers ``ServiceException``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from triggerfish.errors import (
    ConfigError,
    ConflictError,
    IncompleteSignatureError,
    InUseError,
    InvalidParameterError,
    InvalidRequestError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    NotFoundError,
    RequestRefusedError,
    RequestTooLargeError,
    ThrottledError,
    TriggerfishError,
    UnknownOperationError,
    UnrecognizedClientError,
    UnsupportedMediaTypeError,
    ValidationError,
)

NOT_FOUND_MESSAGE = "The resource you requested does not exist."
INTERNAL_MESSAGE = "An internal error occurred in triggerfish; the server log has the details."


@dataclass(frozen=True)
class _LambdaError:
    """One of Lambda's error types: header name, status, the body's message key and ``Type``."""

    type: str
    status: int
    message_key: str = "message"
    kind: str = "User"


_INVALID_PARAMETER = _LambdaError("InvalidParameterValueException", 400)
_SERVICE = _LambdaError("ServiceException", 500, "Message", "Service")

#: Keyed by class; ``TriggerfishError`` catches the rest of the tree (a bad setting, a secret, ...).
_WIRE: dict[type[TriggerfishError], _LambdaError] = {
    NotFoundError: _LambdaError("ResourceNotFoundException", 404, "Message"),
    UnknownOperationError: _LambdaError("UnknownOperationException", 404),
    ConflictError: _LambdaError("ResourceConflictException", 409),
    InUseError: _LambdaError("ResourceInUseException", 400, "Message"),
    ThrottledError: _LambdaError("TooManyRequestsException", 429),
    InvalidParameterError: _INVALID_PARAMETER,
    ValidationError: _LambdaError("ValidationException", 400),
    InvalidRequestError: _LambdaError("InvalidRequestContentException", 400),
    UnsupportedMediaTypeError: _LambdaError("UnsupportedMediaTypeException", 415),
    RequestRefusedError: _LambdaError("AccessDeniedException", 403, "Message"),
    RequestTooLargeError: _LambdaError("RequestTooLargeException", 413),
    # signature problems: 403 like AWS's front door, with the error codes botocore knows
    MissingAuthenticationTokenError: _LambdaError("MissingAuthenticationTokenException", 403),
    IncompleteSignatureError: _LambdaError("IncompleteSignatureException", 403),
    UnrecognizedClientError: _LambdaError("UnrecognizedClientException", 403),
    InvalidSignatureError: _LambdaError("InvalidSignatureException", 403),
    TriggerfishError: _INVALID_PARAMETER,
}


def _lambda_error(exc: BaseException) -> _LambdaError:
    """The Lambda error type ``exc`` answers with: the nearest class in its MRO that has one."""
    for cls in type(exc).__mro__:
        if cls in _WIRE:
            return _WIRE[cls]
    return _SERVICE


def _lambda_message(exc: BaseException, error: _LambdaError) -> str:
    """The message Lambda would send: configuration errors name the field and append the fix."""
    if error is _SERVICE:
        return INTERNAL_MESSAGE  # the detail stays in the server log: it may hold secrets
    if not isinstance(exc, ConfigError):
        return str(exc)
    hint = exc.hint if isinstance(exc, InvalidParameterError) else ""
    message = (exc.lambda_message if isinstance(exc, InvalidParameterError) else "") or exc.message
    if exc.field and error is _INVALID_PARAMETER and exc.field not in message:
        message = f"{exc.field}: {message}"
    return f"{message} ({hint})" if hint else message


def lambda_response(exc: BaseException) -> Response:
    """``exc`` in Lambda's shape: ``x-amzn-ErrorType``, the status, and the JSON body."""
    error = _lambda_error(exc)
    body: dict[str, object] = {"Type": error.kind, error.message_key: _lambda_message(exc, error)}
    headers = {"x-amzn-ErrorType": error.type}
    if isinstance(exc, ThrottledError):
        body["Reason"] = exc.reason
        headers["Retry-After"] = str(exc.retry_after)
    return Response(json.dumps(body), status_code=error.status, headers=headers, media_type="application/json")


async def handle_error(request: Request, exc: Exception) -> Response:
    """The Starlette exception handler for ``TriggerfishError``."""
    return lambda_response(exc)
