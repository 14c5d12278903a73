"""The ``triggerfish`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from triggerfish.errors import TriggerfishError

app = typer.Typer(
    name="triggerfish",
    help="Lambda's Kafka trigger, anywhere.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

err_console = Console(stderr=True)


def _register() -> None:
    # Imported here so each command module can import `app` helpers from this package.
    from triggerfish.cli import kafka

    app.add_typer(kafka.app, name="kafka")
    from triggerfish.cli import doctor

    app.add_typer(doctor.app, name="doctor")
    from triggerfish.cli import bridge

    app.command("bridge")(bridge.bridge)
    from triggerfish.cli import invoke, run, status

    app.command("run")(run.run)
    app.command("status")(status.status)
    app.command("invoke")(invoke.invoke)


_register()


def main() -> None:
    """Entry point: run the app and turn triggerfish's own errors into one red line, no traceback."""
    try:
        app()
    except TriggerfishError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        sys.exit(1)
