"""FilterCriteria: Lambda's pattern language on Kafka values, and its configuration-time errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triggerfish.errors import InvalidParameterError
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.filter import compile_criteria, compile_pattern
from triggerfish.esm.matching import decode_value


def matches(pattern: Any, value: bytes | str | None) -> bool:
    if isinstance(value, str):
        value = value.encode()
    text = pattern if isinstance(pattern, str) else json.dumps(pattern)
    fs = compile_criteria({"Filters": [{"Pattern": text}]})
    assert fs is not None
    return fs.matches(value)


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


DEVICE = j({"device_ID": "AB1234", "session": {"start_time": "2024-01-01T00:00:00", "duration": 162}, "tags": ["x", "y"]})


# --- operators, one by one ---------------------------------------------------------------------

def test_lambda_doc_example_prefix_on_nested_json() -> None:
    assert matches({"value": {"device_ID": [{"prefix": "AB"}]}}, DEVICE)
    assert not matches({"value": {"device_ID": [{"prefix": "XY"}]}}, DEVICE)


def test_exact_values_strings_numbers_booleans_null() -> None:
    doc = j({"s": "on", "n": 300, "f": 1.5, "b": True, "z": None})
    assert matches({"value": {"s": ["on"]}}, doc)
    assert not matches({"value": {"s": ["ON"]}}, doc)  # case-sensitive
    assert matches({"value": {"n": [300]}}, doc)
    assert not matches({"value": {"n": [300.0]}}, doc)  # numbers compare by their text, as Lambda
    assert not matches({"value": {"n": ["300"]}}, doc)  # a string is not a number
    assert matches({"value": {"f": [1.5]}}, doc)
    assert matches({"value": {"b": [True]}}, doc)
    assert not matches({"value": {"b": [1]}}, doc)  # true is not 1
    assert matches({"value": {"z": [None]}}, doc)
    assert not matches({"value": {"s": [None]}}, doc)


def test_empty_string_and_null_are_different() -> None:
    assert matches({"value": {"a": [""]}}, j({"a": ""}))
    assert not matches({"value": {"a": [""]}}, j({"a": None}))
    assert not matches({"value": {"a": [None]}}, j({"a": ""}))
    assert not matches({"value": {"a": [None]}}, j({}))  # null is a value, not absence


def test_suffix_and_equals_ignore_case() -> None:
    doc = j({"file": "report.PNG", "city": "Zürich"})
    assert matches({"value": {"file": [{"suffix": ".PNG"}]}}, doc)
    assert not matches({"value": {"file": [{"suffix": ".png"}]}}, doc)
    assert matches({"value": {"file": [{"equals-ignore-case": "REPORT.png"}]}}, doc)
    assert matches({"value": {"city": [{"equals-ignore-case": "zürich"}]}}, doc)
    assert not matches({"value": {"city": [{"prefix": "z"}]}}, doc)


def test_anything_but() -> None:
    assert matches({"value": {"w": [{"anything-but": ["Raining", "Snowing"]}]}}, j({"w": "Sunny"}))
    assert not matches({"value": {"w": [{"anything-but": ["Raining", "Snowing"]}]}}, j({"w": "Raining"}))
    assert not matches({"value": {"w": [{"anything-but": "Raining"}]}}, j({"w": "Raining"}))
    assert matches({"value": {"n": [{"anything-but": [1, 2]}]}}, j({"n": 3}))
    assert not matches({"value": {"n": [{"anything-but": [1, 2]}]}}, j({"n": 2}))
    assert not matches({"value": {"w": [{"anything-but": ["x"]}]}}, j({}))  # absent is not "anything"
    assert matches({"value": {"w": [{"anything-but": {"prefix": "init"}}]}}, j({"w": "done"}))
    assert not matches({"value": {"w": [{"anything-but": {"prefix": "init"}}]}}, j({"w": "initial"}))


def test_numeric_comparisons_and_ranges() -> None:
    doc = j({"price": 10.5, "qty": 3, "s": "7"})
    assert matches({"value": {"price": [{"numeric": [">", 10]}]}}, doc)
    assert not matches({"value": {"price": [{"numeric": ["<=", 10]}]}}, doc)
    assert matches({"value": {"qty": [{"numeric": ["=", 3]}]}}, doc)
    assert matches({"value": {"qty": [{"numeric": ["=", 3.0]}]}}, doc)  # numeric compares values
    assert matches({"value": {"qty": [{"numeric": [">=", 3, "<", 4]}]}}, doc)
    assert not matches({"value": {"qty": [{"numeric": [">", 3, "<=", 10]}]}}, doc)
    assert not matches({"value": {"s": [{"numeric": [">", 0]}]}}, doc)  # strings are not numbers


def test_exists() -> None:
    doc = j({"a": 1, "n": None, "obj": {"x": 1}})
    assert matches({"value": {"a": [{"exists": True}]}}, doc)
    assert matches({"value": {"n": [{"exists": True}]}}, doc)
    assert not matches({"value": {"b": [{"exists": True}]}}, doc)
    assert matches({"value": {"b": [{"exists": False}]}}, doc)
    assert not matches({"value": {"a": [{"exists": False}]}}, doc)
    assert not matches({"value": {"obj": [{"exists": True}]}}, doc)  # leaf nodes only
    assert matches({"value": {"obj": {"x": [{"exists": True}]}}}, doc)


def test_nested_fields_and_and_or() -> None:
    assert matches({"value": {"session": {"duration": [{"numeric": [">", 100]}]}, "device_ID": ["AB1234"]}}, DEVICE)
    assert not matches({"value": {"session": {"duration": [{"numeric": [">", 100]}]}, "device_ID": ["nope"]}}, DEVICE)
    assert not matches({"value": {"device_ID": {"deeper": ["x"]}}}, DEVICE)  # not an object there
    assert matches({"value": {"device_ID": ["nope", {"prefix": "AB"}]}}, DEVICE)  # OR inside an array
    either = {"value": {"$or": [{"device_ID": ["nope"]}, {"session": {"duration": [162]}}]}}
    assert matches(either, DEVICE)
    neither = {"value": {"$or": [{"device_ID": ["nope"]}, {"session": {"duration": [1]}}]}}
    assert not matches(neither, DEVICE)


def test_arrays_match_when_any_element_matches() -> None:
    assert matches({"value": {"tags": ["y"]}}, DEVICE)
    assert not matches({"value": {"tags": ["z"]}}, DEVICE)
    items = j({"items": [{"sku": "A", "n": 1}, {"sku": "B", "n": 5}]})
    assert matches({"value": {"items": {"n": [{"numeric": [">", 4]}]}}}, items)
    assert not matches({"value": {"items": {"n": [{"numeric": [">", 5]}]}}}, items)
    assert matches({"value": {"a": [2]}}, j([{"a": 1}, {"a": 2}]))  # a top-level JSON array


def test_plain_string_values_and_the_mismatch_rule() -> None:
    assert matches({"value": ["hello"]}, "hello")
    assert matches({"value": [{"anything-but": ["error"]}]}, "all good")
    assert not matches({"value": [{"anything-but": ["error"]}]}, "error")
    assert matches({"value": [{"prefix": "ERR"}]}, "ERR 42")
    # JSON pattern on a plain value, plain pattern on a JSON value: never a match
    assert not matches({"value": {"a": [{"exists": False}]}}, "plain text")
    assert not matches({"value": [{"prefix": "{"}]}, j({"a": 1}))
    assert not matches({"value": [{"anything-but": ["x"]}]}, j({"a": 1}))
    # a bare JSON scalar is plain text
    assert matches({"value": ["42"]}, "42")
    assert matches({"value": ['"quoted"']}, '"quoted"')


def test_tombstones_and_non_utf8_values() -> None:
    assert matches({"value": [None]}, None)
    assert not matches({"value": {"a": [{"exists": False}]}}, None)
    assert not matches({"value": ["x"]}, None)
    binary = b"\xff\xfe\x00garbage"
    assert not matches({"value": [{"anything-but": ["x"]}]}, binary)
    assert not matches({"value": {"a": [{"exists": False}]}}, binary)


def test_filters_are_or_ed_and_empty_criteria_keep_everything() -> None:
    fs = compile_criteria({"Filters": [
        {"Pattern": json.dumps({"value": {"kind": ["order"]}})},
        {"Pattern": json.dumps({"value": ["ping"]})},
    ]})
    assert fs is not None
    assert fs.matches(j({"kind": "order"}))
    assert fs.matches(b"ping")
    assert not fs.matches(j({"kind": "refund"}))
    assert compile_criteria(None) is None
    everything = compile_criteria({"Filters": []})
    assert everything is not None and everything.matches(b"anything")


def test_top_level_or_of_whole_patterns() -> None:
    pattern = {"$or": [{"value": {"a": [1]}}, {"value": ["plain"]}]}
    assert matches(pattern, j({"a": 1}))
    assert matches(pattern, "plain")
    assert not matches(pattern, j({"a": 2}))


# --- configuration-time errors -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("pattern", "part"),
    [
        ("not json", "not valid JSON"),
        ('["value"]', "must be a JSON object"),
        ("{}", "at least one field"),
        ('{"topic": ["t"]}', "only support filtering on the value key"),
        ('{"value": {"a": "x"}}', "value.a: match values must be inside an array"),
        ('{"value": {"a": []}}', "must not be empty"),
        ('{"value": {"a": [{"wildcard": "x*"}]}}', "Unrecognized match type wildcard"),
        ('{"value": {"a": [{"prefix": 1}]}}', "prefix match pattern must be a string"),
        ('{"value": {"a": [{"numeric": ["=>", 1]}]}}', "Unrecognized numeric range operator '=>'"),
        ('{"value": {"a": [{"numeric": [">", "1"]}]}}', "Value of > must be numeric"),
        ('{"value": {"a": [{"numeric": [">", 5, "<", 1]}]}}', "Bottom must be less than top"),
        ('{"value": {"a": [{"numeric": ["<", 5, ">", 1]}]}}', "numeric range is"),
        ('{"value": {"a": [{"exists": "yes"}]}}', "exists takes true or false"),
        ('{"value": {"a": [{"anything-but": []}]}}', "at least one value"),
        ('{"value": {"a": [{"anything-but": [{"x": 1}]}]}}', "strings or numbers"),
        ('{"value": {"a": [{"prefix": "a", "suffix": "b"}]}}', "exactly one operator"),
        ('{"value": {"$or": [{"a": [1]}]}}', "at least two patterns"),
        ('{"value": {"a": [[1]]}}', "cannot be nested"),
        ('{"value": {"a": [NaN]}}', "not valid JSON"),
    ],
)
def test_invalid_patterns_are_rejected_with_lambda_text(pattern: str, part: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        compile_pattern(pattern, "FilterCriteria.Filters[0].Pattern")
    assert info.value.lambda_message.startswith("Invalid filter pattern definition.")
    assert part in str(info.value)
    assert info.value.field == "FilterCriteria.Filters[0].Pattern"


def test_limits_five_filters_and_4096_characters() -> None:
    one = {"Pattern": json.dumps({"value": ["x"]})}
    assert compile_criteria({"Filters": [one] * 5}) is not None
    with pytest.raises(InvalidParameterError, match="6 filters exceed the limit of 5"):
        compile_criteria({"Filters": [one] * 6})
    long = json.dumps({"value": {"a": ["x" * 4100]}})
    with pytest.raises(InvalidParameterError, match="Member must have length less than or equal to 4096"):
        compile_criteria({"Filters": [{"Pattern": long}]})


def _mapping(pattern: str) -> dict[str, Any]:
    return {
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
        "Topics": ["orders"],
        "StartingPosition": "TRIM_HORIZON",
        "FilterCriteria": {"Filters": [{"Pattern": pattern}]},
    }


def test_mapping_config_rejects_bad_pattern_naming_the_field() -> None:
    with pytest.raises(InvalidParameterError) as info:
        MappingConfig.from_dict(_mapping('{"value": {"a": [{"numeric": [">", "x"]}]}}'), where="EventSourceMappings[2]")
    assert info.value.field == "EventSourceMappings[2].FilterCriteria.Filters[0].Pattern"
    assert "Invalid filter pattern definition." in info.value.lambda_message
    ok = MappingConfig.from_dict(_mapping('{"value": {"a": [{"numeric": [">", 1]}]}}'))
    assert ok.filter_criteria is not None


# --- property tests against a reference written straight from the rules -------------------------

class RNum:
    """The reference keeps a JSON number's text (exact match) and value (numeric)."""

    def __init__(self, text: str) -> None:
        self.text, self.value = text, float(text)


def _ref_parse(text: str) -> Any:
    def bad(_: str) -> Any:
        raise ValueError

    return json.loads(text, parse_int=RNum, parse_float=RNum, parse_constant=bad)


def _ref_equal(a: Any, b: Any) -> bool:
    if isinstance(a, RNum) or isinstance(b, RNum):
        return isinstance(a, RNum) and isinstance(b, RNum) and a.text == b.text
    return type(a) is type(b) and a == b


def _ref_condition(op: str, left: float, right: float) -> bool:
    return {"=": left == right, "<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _ref_one(rule: Any, v: Any) -> bool:
    """One rule against one scalar (rule already parsed by the reference parser)."""
    is_scalar = v is None or isinstance(v, (str, bool, RNum))
    if not isinstance(rule, dict):
        return is_scalar and _ref_equal(rule, v)
    (op, arg), = rule.items()
    if op == "prefix":
        return isinstance(v, str) and v.startswith(arg)
    if op == "suffix":
        return isinstance(v, str) and v.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(v, str) and v.casefold() == arg.casefold()
    if op == "numeric":
        if not isinstance(v, RNum):
            return False
        return all(_ref_condition(arg[i], v.value, arg[i + 1].value) for i in range(0, len(arg), 2))
    if op == "anything-but":
        if not is_scalar:
            return False
        if isinstance(arg, dict):
            return isinstance(v, str) and not _ref_one(arg, v)
        excluded = arg if isinstance(arg, list) else [arg]
        return all(not _ref_equal(x, v) for x in excluded)
    raise AssertionError(op)


def _ref_leaf(rules: list[Any], present: bool, value: Any) -> bool:
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if rule["exists"] and present and not isinstance(value, dict):
                return True
            if not rule["exists"] and not present:
                return True
            continue
        if present and any(_ref_one(rule, v) for v in (value if isinstance(value, list) else [value])):
            return True
    return False


def _ref_object(pattern: dict, data: Any) -> bool:
    if isinstance(data, list):
        return any(_ref_object(pattern, d) for d in data)
    if not isinstance(data, dict):
        return False
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_ref_object(alt, data) for alt in sub):
                return False
        elif isinstance(sub, dict):
            if key not in data or not _ref_object(sub, data[key]):
                return False
        elif not _ref_leaf(sub, key in data, data.get(key)):
            return False
    return True


def reference_matches(pattern_text: str, value: bytes | None) -> bool:
    pattern = _ref_parse(pattern_text)
    if value is None:
        kind, data = "plain", None
    else:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return False  # non-UTF-8: data filters never match, and Kafka patterns are all data filters
        try:
            data = _ref_parse(text)
            kind = "json" if isinstance(data, (dict, list)) else "plain"
        except ValueError:
            kind = "plain"
        if kind == "plain":
            data = text

    def root(p: dict) -> bool:
        for key, sub in p.items():
            if key == "$or":
                if not any(root(alt) for alt in sub):
                    return False
            elif isinstance(sub, dict):
                if kind != "json" or not _ref_object(sub, data):
                    return False
            elif kind != "plain" or not _ref_leaf(sub, True, data):
                return False
        return True

    return root(pattern)


# Small domains on purpose, so that generated records and patterns often meet.
KEYS = st.sampled_from(["a", "b"])
TEXT = st.text(alphabet="aAbé", max_size=2)
NUMBER = st.one_of(st.integers(-2, 2), st.sampled_from([0.5, 1.0, 1.5, -2.0]))
SCALAR = st.one_of(TEXT, NUMBER, st.booleans(), st.none())
LEAF_DATA = st.one_of(SCALAR, SCALAR, st.lists(SCALAR, max_size=3))
DATA = st.recursive(
    st.dictionaries(KEYS, LEAF_DATA, min_size=1, max_size=2),
    lambda inner: st.dictionaries(
        KEYS, st.one_of(LEAF_DATA, inner, st.lists(inner, min_size=1, max_size=2)), min_size=1, max_size=2
    ),
    max_leaves=6,
)

STR_OP = st.builds(lambda op, s: {op: s}, st.sampled_from(["prefix", "suffix", "equals-ignore-case"]), TEXT)
NUM_RANGE = st.builds(
    lambda lo, hi, lo_op, hi_op: {"numeric": [lo_op, lo, hi_op, lo + hi]},
    st.integers(-2, 2), st.integers(1, 3), st.sampled_from([">", ">="]), st.sampled_from(["<", "<="]),
)
NUM_ONE = st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(["=", "<", "<=", ">", ">="]), NUMBER)
ANYTHING_BUT = st.one_of(
    st.builds(lambda v: {"anything-but": v}, st.one_of(TEXT, st.integers(-2, 2))),
    st.builds(lambda v: {"anything-but": v}, st.lists(st.one_of(TEXT, NUMBER), min_size=1, max_size=3)),
    st.builds(lambda s: {"anything-but": {"prefix": s}}, TEXT),
)
RULE = st.one_of(SCALAR, STR_OP, NUM_ONE, NUM_RANGE, ANYTHING_BUT, st.builds(lambda b: {"exists": b}, st.booleans()))
RULES = st.lists(RULE, min_size=1, max_size=3)
OBJECT_PATTERN = st.recursive(
    st.dictionaries(KEYS, RULES, min_size=1, max_size=1),
    lambda inner: st.one_of(
        st.dictionaries(KEYS, st.one_of(RULES, inner), min_size=1, max_size=2),
        st.builds(lambda alts, base: {**base, "$or": alts}, st.lists(inner, min_size=2, max_size=3),
                  st.dictionaries(KEYS, RULES, max_size=1)),
    ),
    max_leaves=6,
)
PATTERN = st.one_of(
    st.builds(lambda p: {"value": p}, OBJECT_PATTERN),
    st.builds(lambda r: {"value": r}, RULES),
)
VALUE = st.one_of(
    DATA.map(lambda d: json.dumps(d).encode()),
    st.lists(DATA, max_size=2).map(lambda d: json.dumps(d).encode()),
    TEXT.map(str.encode),
    SCALAR.map(lambda s: json.dumps(s).encode()),
    st.none(),
    st.binary(max_size=6),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=PATTERN, value=VALUE)
def test_matcher_agrees_with_reference(pattern: dict, value: bytes | None) -> None:
    text = json.dumps(pattern)
    compiled = compile_criteria({"Filters": [{"Pattern": text}]})
    assert compiled is not None
    assert compiled.matches(value) == reference_matches(text, value)


def _rule_near(draw: Any, v: Any) -> Any:
    """A rule built from a record's own value: sometimes it must match, sometimes it nearly does."""
    if isinstance(v, dict) or v == []:
        return {"exists": draw(st.booleans())}
    if isinstance(v, list):
        return _rule_near(draw, draw(st.sampled_from(v)))
    choices: list[Any] = [v, {"exists": draw(st.booleans())}, {"anything-but": draw(st.sampled_from(["a", 1]))}]
    if isinstance(v, str):
        cut = draw(st.integers(0, len(v)))
        choices += [
            {"prefix": v[:cut]}, {"suffix": v[cut:]}, {"prefix": v[cut:]}, {"suffix": v[:cut]},
            {"equals-ignore-case": v.swapcase()}, {"anything-but": v}, {"anything-but": {"prefix": v[:cut]}},
        ]
    elif isinstance(v, bool):
        choices += [int(v), not v]
    elif isinstance(v, (int, float)):
        choices += [
            float(v) if isinstance(v, int) else (int(v) if v == int(v) else v),  # 1 vs 1.0: text differs
            {"numeric": [draw(st.sampled_from(["=", "<", "<=", ">", ">="])), v]},
            {"numeric": [">=", v - 1, "<", v + draw(st.sampled_from([0, 0.5, 1]))]},
            {"anything-but": [v]},
        ]
    return draw(st.sampled_from(choices))


@st.composite
def related(draw: Any) -> tuple[dict, bytes | None]:
    """A record and a pattern derived from it, so the interesting comparisons actually happen."""
    record = draw(DATA)

    def build(obj: dict) -> dict:
        pattern: dict[str, Any] = {}
        for key, v in obj.items():
            if not draw(st.booleans()) and pattern:
                continue
            if isinstance(v, dict) and draw(st.booleans()):
                pattern[key] = build(v)
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                pattern[key] = build(v[0])
            else:
                pattern[key] = [_rule_near(draw, v) for _ in range(draw(st.integers(1, 2)))]
        if draw(st.integers(0, 4)) == 0:
            pattern["zz"] = [{"exists": draw(st.booleans())}]
        return pattern

    body = build(record)
    if draw(st.integers(0, 5)) == 0:
        body = {"$or": [body, build(record)]}
    form = draw(st.integers(0, 6))
    if form == 0:  # the same pattern against the record's plain-text twin
        return {"value": body}, b"plain"
    if form == 1:  # a plain-string pattern against a plain value
        text = draw(TEXT)
        return {"value": [_rule_near(draw, text)]}, text.encode()
    if form == 2:  # a plain-string pattern against a JSON array value
        items = draw(st.lists(SCALAR, min_size=1, max_size=2))
        return {"value": [_rule_near(draw, items)]}, json.dumps(items).encode()
    return {"value": body}, json.dumps(record).encode()


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=related())
def test_matcher_agrees_with_reference_on_related_records(case: tuple[dict, bytes | None]) -> None:
    pattern, value = case
    text = json.dumps(pattern)
    compiled = compile_criteria({"Filters": [{"Pattern": text}]})
    assert compiled is not None
    assert compiled.matches(value) == reference_matches(text, value)


def test_absurdly_deep_values_do_not_break_the_matcher() -> None:
    deep_object = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    assert not matches({"value": {"a": [1]}}, deep_object)
    assert matches({"value": [{"prefix": '{"a":{"a"'}]}, deep_object)  # too deep for JSON: plain text
    assert matches({"value": {"a": [1]}}, b"[" * 50 + b'{"a": 1}' + b"]" * 50)  # nested arrays flatten
    assert not matches({"value": {"a": [1]}}, b"[" * 50_000 + b'{"a": 1}' + b"]" * 50_000)


ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
              st.sampled_from(["value", "prefix", "numeric", "exists", "anything-but", "$or", ">", "<=", "x"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["value", "prefix", "suffix", "numeric", "exists", "anything-but",
                                         "equals-ignore-case", "$or", "a", "b"]), inner, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(pattern=st.one_of(ANY_JSON, st.builds(lambda v: {"value": v}, ANY_JSON), PATTERN))
def test_any_json_compiles_or_is_rejected_with_lambda_text(pattern: Any) -> None:
    """Whatever JSON a user writes, configuration either accepts it or says what is wrong; never a traceback."""
    text = json.dumps(pattern)
    try:
        compiled = compile_pattern(text)
    except InvalidParameterError as exc:
        assert exc.lambda_message.startswith("Invalid filter pattern definition.")
    else:
        # an accepted pattern is a valid one: it matches like the reference on every kind of value
        for value in (b'{"a": 1, "b": ["x"]}', b'{"value": {"a": "x"}}', b"plain", b"x", None, b"\xff", b"[1, 2]"):
            assert compiled.matches(decode_value(value)) == reference_matches(text, value)
