"""The typed configuration readers: each names the field, shows the bad value and says what to write."""

from __future__ import annotations

import pytest

from triggerfish.errors import ConfigError
from triggerfish.settings import (
    LENIENT,
    Settings,
    read_bool,
    read_enum,
    read_int,
    read_list,
    read_map,
    read_seconds,
    read_str,
    read_str_map,
)


def test_readers_return_typed_values():
    assert read_bool("b", " TRUE ") is True and read_bool("b", False) is False
    assert read_bool("b", "yes", words=LENIENT) is True and read_bool("b", "", words=LENIENT) is False
    assert read_int("i", " 42 ", 0, 100) == 42 and read_int("i", 7, 0, 10) == 7
    assert read_seconds("s", "2.5", 300) == 2.5 and read_seconds("s", 10, 300) == 10.0
    assert read_enum("e", "b", ["a", "b"]) == "b"
    assert read_list("l", ("x",)) == ["x"]
    assert read_map("m", {"k": 1}) == {"k": 1}
    assert read_str_map("m", {"k": "v"}) == {"k": "v"}


@pytest.mark.parametrize(
    ("read", "text"),
    [
        (lambda: read_bool("http.cors.enabled", "yes"), "http.cors.enabled: 'yes' is not a boolean; use true or false"),
        (lambda: read_bool("DRY_RUN", "maybe", words=LENIENT), "DRY_RUN: 'maybe' is not a boolean; use true or false"),
        (lambda: read_int("http.port", "eighty", 0, 65535), "http.port: 'eighty' is not an integer; use a whole number in 0..65535"),
        (lambda: read_int("http.port", True, 0, 65535), "http.port: True is not an integer; use a whole number in 0..65535"),
        (lambda: read_int("http.port", "70000", 0, 65535), "http.port: 70000 is out of range 0..65535"),
        (lambda: read_seconds("TIMEOUT", "soon", 300), "TIMEOUT: 'soon' is not a number of seconds; use e.g. 10 or 2.5"),
        (lambda: read_seconds("TIMEOUT", "0", 300), "TIMEOUT: 0 is out of range; use 0 < seconds <= 300"),
        (lambda: read_enum("LOAD_BALANCER", "haproxy", ["global-accelerator", "route53"]),
         "LOAD_BALANCER: 'haproxy' is not one of global-accelerator, route53"),
        (lambda: read_enum("status", None, ["firing", "resolved"]), "status: is missing; use one of firing, resolved"),
        (lambda: read_str("labels.site", 3), "labels.site: 3 is not a string; quote the value"),
        (lambda: read_list("alerts", "x"), "alerts: 'x' is not a list; write alerts as an array"),
        (lambda: read_map("body", [1]), "body: [1] is not an object; write body as a mapping of names to values"),
        (lambda: read_str_map("labels", {"a": None}), "labels.a: null is not a string; quote the value"),
    ],
)
def test_errors_name_the_field_the_value_and_the_fix(read, text):
    with pytest.raises(ConfigError) as raised:
        read()
    assert str(raised.value) == text


def test_settings_strip_default_and_require():
    s = Settings({"a": "  x ", "blank": " ", "n": "5", "flags": " GET, post ,,"})
    assert s.str_("a") == "x" and s.raw("a") == "  x " and s.str_("missing", "d") == "d"
    assert s.optional("blank") is None and s.optional("a") == "x"
    assert s.int_("n", 1, 0, 10) == 5 and s.int_("missing", 1, 0, 10) == 1
    assert s.bool_("missing", True) is True and s.seconds("missing", 10.0, 300) == 10.0
    assert s.enum_("blank", ["x", "y"], "y") == "y"
    assert s.list_("flags", ()) == ["GET", "post"] and s.list_("missing", ("A",)) == ["A"]
    with pytest.raises(ConfigError) as raised:
        s.required("blank", "the function needs it")
    assert (raised.value.field, raised.value.message) == ("blank", "is not set; the function needs it")
