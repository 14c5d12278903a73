"""The ``triggerfish`` command line: one Typer app, one module per command group.

A command's module is imported only when that command runs (or help lists it): the bridge and run
commands pull in the bridge, schema and engine modules, which a ``doctor`` run must not pay for.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from triggerfish.errors import TriggerfishError
from triggerfish.lazy import lazy_attributes

# command name -> (module, attribute): a Typer (a command group) or a function (one command)
_COMMANDS: dict[str, tuple[str, str]] = {
    "kafka": ("triggerfish.cli.kafka", "app"),
    "doctor": ("triggerfish.cli.doctor", "app"),
    "bridge": ("triggerfish.cli.bridge", "bridge"),
    "run": ("triggerfish.cli.run", "run"),
    "status": ("triggerfish.cli.status", "status"),
    "invoke": ("triggerfish.cli.invoke", "invoke"),
}
_load = lazy_attributes(__name__, _COMMANDS, {})


class _LazyGroup(TyperGroup):
    """Knows its commands by name; builds each from its module on first use."""

    def list_commands(self, ctx: Any) -> list[str]:  # typer's click Context (its vendored click is private)
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> TyperCommand | TyperGroup | None:
        if cmd_name not in _COMMANDS:
            return None
        command = _click_command(cmd_name, _load(cmd_name))
        command.name = cmd_name
        return command


def _click_command(name: str, target: Any) -> TyperCommand | TyperGroup:
    """``target`` as the command Typer would have made of it under this app (no completion options)."""
    holder = typer.Typer(add_completion=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
        command = typer.main.get_command(holder)
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    else:
        holder.command(name)(target)
        command = typer.main.get_command(holder)
    assert isinstance(command, TyperCommand | TyperGroup)
    return command


app = typer.Typer(
    name="triggerfish",
    help="Lambda's Kafka trigger, anywhere.",
    cls=_LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Lambda's Kafka trigger, anywhere."""


_err_console = Console(stderr=True)


def main() -> None:
    """Entry point: run the app and turn triggerfish's own errors into one red line, no traceback."""
    try:
        app()
    except TriggerfishError as exc:
        _err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        sys.exit(1)
