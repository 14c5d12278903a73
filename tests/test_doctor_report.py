"""The doctor's shared result record: JSON shape, exit codes, table rendering."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from triggerfish.doctor.report import Check, exit_code, render, to_json


def test_json_shape_is_checks_with_six_fields() -> None:
    body = json.loads(to_json([Check.of("tcp", "b:9092", "fail", "PROBLEM: x", "refused", "open it")]))
    assert body == {"checks": [{"stage": "tcp", "target": "b:9092", "status": "fail", "problem": "PROBLEM: x",
                                "detail": "refused", "fix": "open it"}]}


def test_exit_code_fails_only_on_fail() -> None:
    assert exit_code([Check.of("a", "t", "ok"), Check.of("b", "t", "warn"), Check.of("c", "t", "skip")]) == 0
    assert exit_code([Check.of("a", "t", "ok"), Check.of("b", "t", "fail")]) == 1


def test_status_is_validated() -> None:
    with pytest.raises(ValueError, match="status"):
        Check.of("a", "t", "broken")  # type: ignore[arg-type]


def test_table_hides_passing_details_unless_verbose() -> None:
    checks = [Check.of("dns", "h:1", "ok", "", "10.0.0.1"), Check.of("tcp", "h:1", "fail", "refused", "port closed", "start it")]
    out = io.StringIO()
    assert render(checks, as_json=False, console=Console(file=out, width=200, color_system=None)) == 1
    text = out.getvalue()
    assert "port closed" in text and "10.0.0.1" not in text and "1 ok" in text and "1 fail" in text
    out = io.StringIO()
    render(checks, as_json=False, console=Console(file=out, width=200, color_system=None), verbose=True)
    assert "10.0.0.1" in out.getvalue()


def test_table_is_coloured_for_terminals() -> None:
    out = io.StringIO()
    render([Check.of("tcp", "h:1", "fail", "refused")], as_json=False,
           console=Console(file=out, width=120, force_terminal=True, color_system="standard"))
    assert "\x1b[1;31mFAIL" in out.getvalue()  # bold red


def test_square_brackets_in_a_fix_are_printed_not_parsed_as_markup() -> None:
    out = io.StringIO()
    render([Check.of("sasl", "b:9093", "fail", "refused", fix="--add-config 'SCRAM-SHA-512=[password=...]'")],
           as_json=False, console=Console(file=out, width=200, color_system=None))
    assert "[password=...]" in out.getvalue()
