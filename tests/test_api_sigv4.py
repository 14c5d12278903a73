"""SigV4 verification: requests signed by botocore verify; tampering and wrong keys do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from triggerfish.api import sigv4
from triggerfish.errors import (
    AuthenticationError,
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)

KEY = sigv4.AccessKey("AKIDTRIGGERFISH", "s3cr3t/value+with=chars")


def signed(
    method: str = "POST",
    path: str = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aorders/invocations",
    query: str = "Qualifier=%24LATEST",
    body: bytes = b'{"x": 1}',
    secret: str = KEY.secret_access_key,
    access_key: str = KEY.access_key_id,
) -> dict:
    url = f"http://127.0.0.1:9000{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json", "X-Amz-Log-Type": "Tail"})
    SigV4Auth(Credentials(access_key, secret), "lambda", "us-east-1").add_auth(request)
    prepared = request.prepare()
    headers = [(k, v) for k, v in prepared.headers.items()]
    headers.append(("host", "127.0.0.1:9000"))
    return dict(method=method, raw_path=path, query_string=query, headers=headers, body=body)


def test_botocore_signed_request_verifies() -> None:
    sigv4.verify(KEY, **signed())


def test_get_with_several_query_parameters_verifies() -> None:
    sigv4.verify(KEY, **signed(method="GET", path="/2015-03-31/event-source-mappings/", query="MaxItems=2&FunctionName=orders", body=b""))


def test_wrong_secret_is_invalid_signature() -> None:
    with pytest.raises(InvalidSignatureError) as info:
        sigv4.verify(KEY, **signed(secret="not-the-secret"))
    assert KEY.secret_access_key not in info.value.message


def test_unknown_access_key_is_unrecognized_client() -> None:
    with pytest.raises(UnrecognizedClientError):
        sigv4.verify(KEY, **signed(access_key="AKIDOTHER"))


@pytest.mark.parametrize("field", ["body", "raw_path", "query_string", "method"])
def test_tampering_breaks_the_signature(field: str) -> None:
    request = signed()
    request[field] = {
        "body": b'{"x": 2}',
        "raw_path": request["raw_path"].replace("orders", "billing"),
        "query_string": "Qualifier=prod",
        "method": "PUT",
    }[field]
    with pytest.raises(InvalidSignatureError):
        sigv4.verify(KEY, **request)


def test_tampered_signed_header_breaks_the_signature() -> None:
    request = signed()
    request["headers"] = [(k, "None" if k.lower() == "x-amz-log-type" else v) for k, v in request["headers"]]
    with pytest.raises(AuthenticationError):
        sigv4.verify(KEY, **request)


def test_missing_authorization() -> None:
    request = signed()
    request["headers"] = [(k, v) for k, v in request["headers"] if k.lower() != "authorization"]
    with pytest.raises(MissingAuthenticationTokenError):
        sigv4.verify(KEY, **request)


def test_malformed_authorization() -> None:
    request = signed()
    request["headers"] = [(k, "AWS4-HMAC-SHA256 garbage" if k.lower() == "authorization" else v) for k, v in request["headers"]]
    with pytest.raises(IncompleteSignatureError):
        sigv4.verify(KEY, **request)


def test_old_signature_is_expired() -> None:
    later = datetime.now(UTC) + timedelta(minutes=20)
    with pytest.raises(InvalidSignatureError) as info:
        sigv4.verify(KEY, **signed(), now=later)
    assert "expired" in info.value.message


def test_access_key_repr_hides_the_secret() -> None:
    assert KEY.secret_access_key not in repr(KEY)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    segments=st.lists(_text.filter(bool), min_size=1, max_size=4),
    params=st.lists(st.tuples(_text.filter(bool), _text), max_size=4),
    body=st.binary(max_size=64),
)
def test_any_request_botocore_signs_verifies(segments: list[str], params: list[tuple[str, str]], body: bytes) -> None:
    # paths and query strings as botocore's rest-json serializer sends them: percent-encoded
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params)
    request = signed(method="POST", path=path, query=query, body=body)
    sigv4.verify(KEY, **request)
    with pytest.raises(AuthenticationError):
        sigv4.verify(KEY, **{**request, "body": body + b"!"})
