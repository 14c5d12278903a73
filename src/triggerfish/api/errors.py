"""Lambda's error responses: the exception types the control API raises and their wire shape.

Lambda (rest-json) names the error in the ``x-amzn-ErrorType`` header and answers a JSON body with
``"Type": "User"`` and the message under ``message`` or ``Message`` (the service model spells it
differently per exception; botocore reads either). ``TooManyRequestsException`` adds ``Reason`` and
a ``Retry-After`` header.
"""

from __future__ import annotations

import json

from starlette.responses import Response


class LambdaAPIError(Exception):
    """An error answered to the client in Lambda's shape. Subclasses fix the code and status."""

    code = "ServiceException"
    status = 500
    message_key = "Message"
    error_kind = "Service"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def body(self) -> dict[str, object]:
        return {"Type": self.error_kind, self.message_key: self.message}

    def headers(self) -> dict[str, str]:
        return {"x-amzn-ErrorType": self.code}

    def response(self) -> Response:
        return Response(
            json.dumps(self.body()), status_code=self.status, headers=self.headers(), media_type="application/json"
        )


class UserError(LambdaAPIError):
    error_kind = "User"


class InvalidParameterValueException(UserError):
    code = "InvalidParameterValueException"
    status = 400
    message_key = "message"


class ValidationException(UserError):
    """A request member breaks the service model's constraints (length, range, enum, pattern)."""

    code = "ValidationException"
    status = 400
    message_key = "message"


class InvalidRequestContentException(UserError):
    """The body is not JSON or not an object."""

    code = "InvalidRequestContentException"
    status = 400
    message_key = "message"


class ResourceNotFoundException(UserError):
    code = "ResourceNotFoundException"
    status = 404
    message_key = "Message"


class ResourceConflictException(UserError):
    code = "ResourceConflictException"
    status = 409
    message_key = "message"


class ResourceInUseException(UserError):
    code = "ResourceInUseException"
    status = 400
    message_key = "Message"


class RequestTooLargeException(UserError):
    code = "RequestTooLargeException"
    status = 413
    message_key = "message"


class TooManyRequestsException(UserError):
    code = "TooManyRequestsException"
    status = 429
    message_key = "message"

    def __init__(
        self,
        message: str = "Rate Exceeded.",
        reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded",
        retry_after_seconds: int = 1,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds

    def body(self) -> dict[str, object]:
        return {**super().body(), "Reason": self.reason}

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Retry-After": str(self.retry_after_seconds)}


class ServiceException(LambdaAPIError):
    code = "ServiceException"
    status = 500


class AuthError(LambdaAPIError):
    """Signature problems: 403 like AWS's front door, with the AWS error codes botocore knows."""

    status = 403
    message_key = "message"
    error_kind = "User"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownOperationException(UserError):
    code = "UnknownOperationException"
    status = 404
    message_key = "message"


NOT_FOUND_MESSAGE = "The resource you requested does not exist."
