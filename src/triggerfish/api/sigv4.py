"""Checking AWS Signature Version 4 on control-API requests.

boto3 and the AWS CLI sign every call. By default the control API accepts any signature (like a local
emulator; ``AWS_IAM`` function URLs never do, see ``api.urls``); with ``--require-auth`` the access
key must match the configured pair and the signature
is recomputed with botocore's own signer over the request exactly as received, so a request that
botocore signed with the right secret verifies, and anything else gets AWS's 403 error codes.
The secret never appears in errors or logs.
"""

from __future__ import annotations

import functools
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from triggerfish import secrets
from triggerfish.errors import (
    ConfigError,
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)

# AWS accepts signatures made up to 15 minutes either side of its clock.
_MAX_SKEW = timedelta(minutes=15)
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"  # botocore.auth's

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+"
    r"Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*"
    r"Signature=(?P<signature>[0-9a-f]+)\s*$"
)


@dataclass(frozen=True)
class AccessKey:
    """The one key pair accepted when authentication is required."""

    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # keep the secret out of reprs and tracebacks
        return f"AccessKey(access_key_id={self.access_key_id!r}, secret_access_key='***')"


@dataclass(frozen=True)
class _SignedRequestAuth:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _parse_authorization(value: str) -> _SignedRequestAuth:
    """Split a SigV4 Authorization header; raise IncompleteSignatureError if malformed."""
    match = _AUTH_RE.match(value.strip())
    if not match:
        raise IncompleteSignatureError(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
            "in the AWS4-HMAC-SHA256 format."
        )
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise IncompleteSignatureError(
            "Credential must have the form <access key>/<date>/<region>/<service>/aws4_request."
        )
    return _SignedRequestAuth(
        access_key_id=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=tuple(match["signed"].split(";")),
        signature=match["signature"],
    )


@functools.cache
def _signer_class() -> Any:
    """botocore's signer, restricted to the headers the client said it signed. botocore (with urllib3 and
    pyOpenSSL) is imported on the first signature checked: it is ~15 MB and 0.15 s of every engine's start."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import HTTPHeaders

    class ReceivedRequestSigner(SigV4Auth):  # type: ignore[misc]  # botocore ships no type hints
        def __init__(self, credentials: Any, service: str, region: str, signed: Iterable[str]) -> None:
            super().__init__(credentials, service, region)
            self._signed = set(signed)

        def headers_to_sign(self, request: Any) -> Any:
            selected = HTTPHeaders()
            for name, value in request.headers.items():
                if name.lower() in self._signed:
                    selected[name.lower()] = value
            return selected

    return ReceivedRequestSigner


def _expected_signature(
    auth: _SignedRequestAuth,
    secret_access_key: str,
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    timestamp: str,
) -> str:
    """The signature botocore would compute for this request with ``secret_access_key``."""
    from botocore.awsrequest import AWSRequest, HTTPHeaders
    from botocore.credentials import Credentials

    request_headers = HTTPHeaders()
    for name, value in headers:
        request_headers[name] = value
    url = "http://signed" + raw_path + (f"?{query_string}" if query_string else "")
    request = AWSRequest(method=method, url=url, headers=request_headers, data=body)
    request.context["timestamp"] = timestamp
    signer = _signer_class()(
        Credentials(auth.access_key_id, secret_access_key), auth.service, auth.region, auth.signed_headers
    )
    canonical = signer.canonical_request(request)
    signature: str = signer.signature(signer.string_to_sign(request, canonical), request)
    return signature


def verify(
    key: AccessKey,
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: list[tuple[str, str]],
    body: bytes,
    now: datetime | None = None,
) -> None:
    """Raise an AuthenticationError unless the request carries a valid SigV4 signature made with ``key``."""
    lowered = {name.lower(): value for name, value in headers}
    authorization = lowered.get("authorization")
    if not authorization:
        raise MissingAuthenticationTokenError("Missing Authentication Token")
    auth = _parse_authorization(authorization)
    if "host" not in auth.signed_headers:
        raise IncompleteSignatureError("SignedHeaders must include 'host'.")
    if auth.access_key_id != key.access_key_id:
        raise UnrecognizedClientError("The security token included in the request is invalid.")
    timestamp = lowered.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(timestamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignatureError(
            "The request must carry an X-Amz-Date header like 20250101T000000Z."
        ) from None
    if not timestamp.startswith(auth.date):
        raise InvalidSignatureError("Credential date does not match X-Amz-Date.")
    current = now or datetime.now(UTC)
    if abs(current - signed_at) > _MAX_SKEW:
        raise InvalidSignatureError(
            f"Signature expired: {timestamp} is more than 15 minutes away from the server time "
            f"{current.strftime(SIGV4_TIMESTAMP)}. Check the client's clock."
        )
    expected = _expected_signature(
        auth,
        key.secret_access_key,
        method=method,
        raw_path=raw_path,
        query_string=query_string,
        headers=headers,
        body=body,
        timestamp=timestamp,
    )
    if not hmac.compare_digest(expected, auth.signature):
        raise InvalidSignatureError(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )


def verify_scope(key: AccessKey, scope: Mapping[str, Any], body: bytes) -> None:
    """:func:`verify` of an ASGI request (its ``scope`` and whole ``body``), exactly as received."""
    path: bytes = scope.get("raw_path") or str(scope.get("path", "")).encode()
    verify(
        key,
        method=str(scope["method"]),
        raw_path=path.decode("latin-1"),
        query_string=bytes(scope.get("query_string", b"")).decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        body=body,
    )


_ACCESS_KEY_ENV = "TRIGGERFISH_ACCESS_KEY_ID"
_SECRET_KEY_ENV = "TRIGGERFISH_SECRET_ACCESS_KEY"


def environment_key() -> AccessKey | None:
    """The key pair in TRIGGERFISH_ACCESS_KEY_ID / TRIGGERFISH_SECRET_ACCESS_KEY, if both are set."""
    key_id, secret = os.environ.get(_ACCESS_KEY_ENV), os.environ.get(_SECRET_KEY_ENV)
    return AccessKey(key_id, secret) if key_id and secret else None


def load_access_key(secret_ref: str | None = None) -> AccessKey:
    """The key pair for ``--require-auth``: from a secret reference holding
    ``{"AccessKeyId": ..., "SecretAccessKey": ...}`` (``arn:aws:secretsmanager:...``, ``file://``,
    ``env:VAR``), else from the TRIGGERFISH_ACCESS_KEY_ID / TRIGGERFISH_SECRET_ACCESS_KEY variables."""
    if secret_ref:
        data = secrets.read_json(secret_ref)
        key_id, secret = data.get("AccessKeyId"), data.get("SecretAccessKey")
        if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id or not secret:
            raise ConfigError(
                "--auth-secret",
                f"secret {secret_ref} must be JSON with string fields AccessKeyId and SecretAccessKey",
            )
        return AccessKey(key_id, secret)
    key = environment_key()
    if key is None:
        raise ConfigError(
            "--require-auth",
            f"no access key configured: set {_ACCESS_KEY_ENV} and {_SECRET_KEY_ENV}, or pass --auth-secret REF "
            'pointing at {"AccessKeyId": ..., "SecretAccessKey": ...}',
        )
    return key
