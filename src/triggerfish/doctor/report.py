"""The doctor's result record and its two renderings: a colour table for people, JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from triggerfish.checks import STATUSES, Check, Status

__all__ = ["STATUSES", "Check", "Status", "exit_code", "render", "summary", "table", "to_json"]

TRACE = "passed: "  # details starting with this list the hops that passed; tables show them only with -v

_STYLE = {"ok": "bold green", "fail": "bold red", "warn": "bold yellow", "skip": "dim"}


def exit_code(checks: Iterable[Check]) -> int:
    """0 when nothing failed, 1 when any check failed (warnings and skips don't fail a run)."""
    return 1 if any(c.failed for c in checks) else 0


def to_json(checks: Sequence[Check]) -> str:
    return json.dumps({"checks": [c.to_dict() for c in checks]}, indent=2)


def table(checks: Sequence[Check], title: str | None = None, verbose: bool = False) -> Table:
    out = Table(title=title, show_lines=True, expand=False)
    out.add_column("stage", style="bold", no_wrap=True)
    out.add_column("target", overflow="fold")
    out.add_column("status", no_wrap=True)
    out.add_column("problem / detail", overflow="fold")
    out.add_column("fix", overflow="fold", style="cyan")
    for c in checks:
        body = Text(c.problem, style="bold" if c.status == "fail" else "")
        # A detail that is only a trace of what passed ("passed: ...") is noise in a table unless asked for.
        if c.detail and (verbose or (c.status != "ok" and not c.detail.startswith(TRACE))):
            if c.problem:
                body.append("\n")
            # Details are "; "-joined hops or facts: one per line reads better in a table.
            body.append(c.detail.replace("; ", "\n"), style="dim")
        # Text, not str: a fix like 'SCRAM-SHA-512=[password=...]' must not be read as rich markup.
        out.add_row(Text(c.stage), Text(c.target), Text(c.status.upper(), style=_STYLE[c.status]), body, Text(c.fix))
    return out


def summary(checks: Sequence[Check]) -> Text:
    counts = {s: sum(1 for c in checks if c.status == s) for s in STATUSES}
    line = Text()
    for s in STATUSES:
        if counts[s]:
            line.append(f"{counts[s]} {s}  ", style=_STYLE[s])
    if not checks:
        line.append("nothing checked", style="dim")
    return line


def render(checks: Sequence[Check], *, as_json: bool, console: Console | None = None, title: str | None = None,
           verbose: bool = False) -> int:
    """Print the checks (table or JSON) and return the exit code."""
    if as_json:
        # Plain print: JSON must not be wrapped or coloured by rich.
        print(to_json(checks))
    else:
        console = console or Console()
        console.print(table(checks, title=title, verbose=verbose))
        console.print(summary(checks))
    return exit_code(checks)
