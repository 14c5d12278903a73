"""Why a fencing step failed, and whether Alertmanager should try again.

Alertmanager retries a webhook only on 5xx (and transport errors), with back-off until the
group's flush deadline; any 4xx is dropped until the next ``group_interval``. So every failure is
one of two kinds, and the kind decides the HTTP status the handler returns.
"""

from __future__ import annotations


class FencingFailure(Exception):
    """A step could not complete. ``str()`` is safe to log: it never carries a secret."""

    status_code = 500


class Retryable(FencingFailure):
    """A retry soon can succeed: timeouts, throttling, 5xx from a dependency, a cache not yet offline."""

    status_code = 503


class Permanent(FencingFailure):
    """Retrying now cannot help (wrong names, rejected credentials, missing permission).

    Returned as 424 so Alertmanager records a failed notification (visible in its metrics) and
    re-sends only at the next group_interval, instead of hammering a dependency that says no.
    """

    status_code = 424


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


def from_boto(operation: str, exc: Exception) -> FencingFailure:
    """Classify a boto3/botocore exception raised by ``operation``."""
    import botocore.exceptions as bx

    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{operation}: {code}: {error.get('Message', '')}".rstrip(": ")
        if code in _TRANSIENT_AWS_CODES or status >= 500:
            return Retryable(text)
        return Permanent(text)
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return Permanent(f"{operation}: no AWS credentials found")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionError, bx.ReadTimeoutError, bx.ConnectTimeoutError)):
        return Retryable(f"{operation}: cannot reach AWS ({type(exc).__name__})")
    if isinstance(exc, bx.ParamValidationError):
        return Permanent(f"{operation}: {exc}")
    return Retryable(f"{operation}: {type(exc).__name__}: {exc}")
