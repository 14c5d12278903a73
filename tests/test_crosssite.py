"""The pure checks behind the control API's and the bridge's refusal of cross-site browser requests."""

from __future__ import annotations

import pytest

from triggerfish.crosssite import host_allowed, host_name, is_json_type, is_loopback, is_simple_type


@pytest.mark.parametrize(("header", "name"), [
    ("127.0.0.1:9000", "127.0.0.1"), ("LocalHost:1", "localhost"), ("[::1]:9000", "::1"), ("[::1]", "::1"),
    ("evil.example", "evil.example"), ("::1", "::1"),
])
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_host_allowed() -> None:
    loop = {"local_address": "127.0.0.1", "bound": "127.0.0.1", "configured": ()}
    for ok in ("127.0.0.1:9000", "localhost:9000", "[::1]:9000", "localhost"):
        assert host_allowed(ok, **loop), ok
    for bad in ("evil.example", "evil.example:9000", "localhost.evil.example", "10.0.0.1:9000", "", None):
        assert not host_allowed(bad, **loop), bad
    assert host_allowed("api.internal:80", local_address="127.0.0.1", bound="127.0.0.1", configured=("API.internal",))
    assert host_allowed("anything", local_address="127.0.0.1", bound="127.0.0.1", configured=("*",))
    # off loopback: the bound address and the address the connection arrived on, not the loopback names
    wide = {"local_address": "192.0.2.7", "bound": "0.0.0.0", "configured": ()}
    assert host_allowed("192.0.2.7:9000", **wide)
    assert not host_allowed("localhost:9000", **wide)
    assert host_allowed("api.example", local_address="192.0.2.7", bound="api.example", configured=())


def test_types_and_loopback() -> None:
    assert is_simple_type("text/plain; charset=UTF-8") and is_simple_type("Multipart/Form-Data; boundary=x")
    assert not is_simple_type(None) and not is_simple_type("application/json")
    assert is_json_type("application/json") and is_json_type("application/vnd.kafka.v2+json")
    assert is_json_type("application/x-amz-json-1.1") and not is_json_type("text/plain") and not is_json_type(None)
    assert is_loopback("::1") and is_loopback("[::1]") and is_loopback("127.0.0.5") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
