"""``triggerfish invoke FUNCTION --event file.json``: run one invocation locally, like ``sam local invoke``.

Prints the handler's result (or Lambda's error payload) as JSON on stdout and the invocation's log
on stderr; exits 1 when the function failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from triggerfish.cli import template_options
from triggerfish.cli.template_options import ENV_VARS, KAFKA_BOOTSTRAP, OVERRIDES, PARAMETER_OVERRIDES, TEMPLATE
from triggerfish.errors import ConfigError
from triggerfish.functions.runtime import FunctionRuntime
from triggerfish.json_input import loads


def invoke(
    function: str = typer.Argument(..., help="FunctionName from the config (or a template's logical id)"),
    event: str = typer.Option("-", "--event", "-e", help="event JSON file ('-' = stdin; empty = {})"),
    config: Path = typer.Option(Path("triggerfish.yaml"), "--config", "-c", help="the triggerfish.yaml declaring it"),
    template: Path | None = TEMPLATE,
    parameter_overrides: list[str] = PARAMETER_OVERRIDES,
    env_vars: Path | None = ENV_VARS,
    kafka_bootstrap: list[str] = KAFKA_BOOTSTRAP,
    overrides: Path | None = OVERRIDES,
) -> None:
    """Invoke a function once with an event and print its result."""
    loaded = template_options.load(config, template, parameter_overrides, env_vars, kafka_bootstrap, overrides)
    project = loaded.project
    name = loaded.function_name(function)
    if name is None:
        why = [line for line in loaded.skipped if line.startswith(f"{function}: ")]
        raise ConfigError("FUNCTION", why[0] if why else
                          f"Function not found: {function} (declared: {', '.join(project.functions) or 'none'})")
    function = name
    if event == "-":
        payload = b"{}" if sys.stdin.isatty() else sys.stdin.buffer.read()
    else:
        try:
            payload = Path(event).read_bytes()
        except OSError as exc:
            raise ConfigError("--event", f"cannot read {event}: {exc.strerror}") from None
    payload = payload.strip() or b"{}"
    try:
        loads(payload)
    except ValueError as exc:
        raise ConfigError("--event", f"{event} is not JSON: {exc}") from None
    runtime = FunctionRuntime([project.functions[function]])
    try:
        result = runtime.invoke(function, payload)
    finally:
        runtime.close()
    err = Console(stderr=True)
    err.print(result.logs.rstrip("\n"), highlight=False, markup=False, style="dim", soft_wrap=True)
    try:
        text = json.dumps(loads(result.payload), indent=2)
    except (ValueError, RecursionError):  # not JSON, or too deep to indent
        text = result.payload.decode(errors="replace")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    if not result.ok:
        raise typer.Exit(1)
