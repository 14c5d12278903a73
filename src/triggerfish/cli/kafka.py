"""``triggerfish kafka up|down|status``: a real local Kafka broker for development and tests."""

from __future__ import annotations

import re

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from triggerfish import localkafka

app = typer.Typer(help="Run a real local Kafka broker (KRaft, PLAINTEXT + SASL_SSL + mTLS, ACLs on).", no_args_is_help=True)
_stderr = Console(stderr=True)

_PortBase = typer.Option(
    localkafka.DEFAULT_PORT_BASE, "--port-base", envvar="TRIGGERFISH_KAFKA_PORT_BASE",
    help="First of four ports: PLAINTEXT, SASL_SSL, mTLS, KRaft controller.",
)

_DOWNLOADED = re.compile(r"Downloaded from \S+: \S+/([^/]+\.(?:jar|pom))")


@app.command("up")
def _up(port_base: int = _PortBase) -> None:
    """Start the broker (or reuse the running one) and print shell-sourceable KAFKA_* lines."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=_stderr, transient=True,
    ) as progress:
        task = progress.add_task("starting Kafka", total=None)
        fetched = 0

        def on_line(line: str) -> None:
            nonlocal fetched
            match = _DOWNLOADED.search(line)
            if match:
                fetched += 1
                progress.update(task, description=f"fetching Kafka jars from Maven Central ({fetched}): {match.group(1)}")

        env = localkafka.up(port_base, on_line=on_line)
    for line in env.lines():
        typer.echo(line)


@app.command("status")
def _status(port_base: int = _PortBase) -> None:
    """Print the KAFKA_* lines when the broker runs (exit 0); say it is down otherwise (exit 1)."""
    env = localkafka.status(port_base)
    if env is None:
        _stderr.print(f"Kafka is down (no local broker for port base {port_base}). Start it: triggerfish kafka up")
        raise typer.Exit(1)
    for line in env.lines():
        typer.echo(line)


@app.command("down")
def _down(
    port_base: int = _PortBase,
    keep_data: bool = typer.Option(False, "--keep-data", help="Keep topics, offsets, certificates and password."),
) -> None:
    """Stop the broker and remove its data (unless --keep-data)."""
    stopped = localkafka.down(port_base, keep_data=keep_data)
    _stderr.print("Kafka stopped." if stopped else "Kafka was not running.")
