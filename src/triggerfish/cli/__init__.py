"""The ``triggerfish`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

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


_register()


def main() -> None:
    """Entry point: run the app and turn triggerfish's own errors into one red line, no traceback."""
    try:
        app()
    except TriggerfishError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(1)
