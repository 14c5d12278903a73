"""``triggerfish run``'s log lines: plain when piped, coloured on a terminal, handler output prefixed."""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator

import pytest

from triggerfish.cli.log_lines import HandlerOutput, setup_logging


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    ours = logging.getLogger("triggerfish").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("triggerfish").setLevel(ours)


def test_piped_lines_are_plain_with_a_full_timestamp(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("info", out)
    logging.getLogger("triggerfish.esm.invoker").info("%s <- %s OK in %.0f ms", "fn", "orders-0@1..1", 4.2)
    logging.getLogger("triggerfish.esm").debug("not at info")
    logging.getLogger("urllib3").info("a library's info is not shown")
    logging.getLogger("urllib3").warning("a library's warning is")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} INFO     fn <- orders-0@1\.\.1 OK in 4 ms", lines[0])
    assert lines[1].endswith("WARNING  a library's warning is")
    assert "\x1b[" not in out.getvalue()


def test_terminal_lines_colour_the_level(restore_logging: None) -> None:
    out = _Terminal()
    setup_logging("debug", out)
    logging.getLogger("triggerfish").warning("careful")
    line = out.getvalue().rstrip("\n")
    assert "\x1b[31mWARNING \x1b[0m careful" in line
    assert re.match(r"\x1b\[2m\d\d:\d\d:\d\d\x1b\[0m ", line)


def test_handler_output_prefixes_every_line_and_lines_do_not_interleave() -> None:
    out = io.StringIO()
    sink = HandlerOutput(out)
    sink("orders", "0123456789abcdef", "first\nsecond\n")
    assert out.getvalue() == "orders 01234567 first\norders 01234567 second\n"

    out = io.StringIO()
    sink = HandlerOutput(out)
    block = "".join(f"line {i}\n" for i in range(50))

    def print_many(n: int) -> None:
        for _ in range(20):
            sink(f"fn{n}", f"{n:08d}", block)

    threads = [threading.Thread(target=print_many, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 * 20 * 50
    # each call's 50 lines stay together
    for start in range(0, len(lines), 50):
        assert len({line.split(" ")[0] for line in lines[start:start + 50]}) == 1


def test_terminal_handler_output_colours_the_prefix() -> None:
    out = _Terminal()
    HandlerOutput(out)("orders", "0123456789abcdef", "hello")
    assert out.getvalue() == "\x1b[36morders\x1b[0m \x1b[2m01234567\x1b[0m hello\n"
