"""Why a fencing step failed, and whether Alertmanager should try again.

Alertmanager retries a webhook only on 5xx (and transport errors), with back-off until the
group's flush deadline; any 4xx is dropped until the next ``group_interval``. So every failure is
one of two kinds (``TransientFencingError``, ``PermanentFencingError`` in ``triggerfish.errors``), and
the kind decides the HTTP status the handler returns; this module sorts AWS's errors into them.
"""

from __future__ import annotations

from triggerfish.errors import FencingError, PermanentFencingError, TransientFencingError

# Error codes AWS uses for "try again later"; anything answered with HTTP >= 500 counts too.
_TRANSIENT_AWS_CODES = frozenset(
    {
        "InternalServiceErrorException",
        "TransactionInProgressException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    }
)


def from_boto(operation: str, exc: Exception) -> FencingError:
    """Classify a boto3/botocore exception raised by ``operation``."""
    import botocore.exceptions as bx

    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{operation}: {code}: {error.get('Message', '')}".rstrip(": ")
        if code in _TRANSIENT_AWS_CODES or status >= 500:
            return TransientFencingError(text)
        return PermanentFencingError(text)
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return PermanentFencingError(f"{operation}: no AWS credentials found")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionError, bx.ReadTimeoutError, bx.ConnectTimeoutError)):
        return TransientFencingError(f"{operation}: cannot reach AWS ({type(exc).__name__})")
    if isinstance(exc, bx.ParamValidationError):
        return PermanentFencingError(f"{operation}: {exc}")
    return TransientFencingError(f"{operation}: {type(exc).__name__}: {exc}")
