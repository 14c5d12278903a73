"""The ``triggerfish`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from triggerfish.cli import bridge, doctor, invoke, kafka, run, status
from triggerfish.errors import TriggerfishError

app = typer.Typer(
    name="triggerfish",
    help="Lambda's Kafka trigger, anywhere.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_err_console = Console(stderr=True)

app.add_typer(kafka.app, name="kafka")
app.add_typer(doctor.app, name="doctor")
app.command("bridge")(bridge.bridge)
app.command("run")(run.run)
app.command("status")(status.status)
app.command("invoke")(invoke.invoke)


def main() -> None:
    """Entry point: run the app and turn triggerfish's own errors into one red line, no traceback."""
    try:
        app()
    except TriggerfishError as exc:
        _err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        sys.exit(1)
