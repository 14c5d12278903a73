"""``triggerfish bridge``: run the Strimzi-compatible Kafka HTTP bridge from a Strimzi properties file."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console

from triggerfish.bridge.config import from_file
from triggerfish.bridge.server import serve

_console = Console(stderr=True)


def bridge(
    config: Path = typer.Option(..., "--config", "--config-file", help="Strimzi bridge properties file (bridge.properties)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow a non-loopback http.host without HTTP authentication."),
) -> None:
    """Serve Kafka over HTTP with Strimzi Kafka Bridge's API (produce, consume, topics)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = from_file(config)

    def ready(addresses: list[tuple[str, int]]) -> None:
        api = addresses[0]
        line = f"[green]bridge[/] listening on http://{api[0]}:{api[1]}"
        if len(addresses) > 1:
            line += f"  (management: http://{addresses[1][0]}:{addresses[1][1]}/healthy /ready /metrics)"
        line += f"  kafka: {cfg.admin.get('bootstrap.servers')}"
        if cfg.auth.type != "none":
            line += f"  auth: {cfg.auth.type}"
        _console.print(line, highlight=False)

    serve(cfg, insecure=insecure, on_ready=ready)
