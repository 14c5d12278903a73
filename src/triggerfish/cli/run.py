"""``triggerfish run``: run the config file's functions and event source mappings in the foreground.

Runs until SIGINT/SIGTERM, then stops polling, lets in-flight batches finish, commits, leaves the
consumer groups and exits 0. The control API (Lambda's REST API, function URLs, metrics) listens on
``--host``/``--port`` (127.0.0.1:9000 by default; ``--port 0`` picks a free port, ``--no-api``
turns it off). Off loopback it needs ``--require-auth`` or ``--insecure``; ``--allowed-host``,
``--allowed-origin``, ``--secret-file-root`` and ``--secret-env-prefix`` widen what it accepts.
``--cluster``/``--cluster-bootstrap`` (or the config's ``Cluster`` section) make it a replica of a fleet.
``--template template.yaml`` runs a SAM or CloudFormation template instead (``cli/template_options.py``).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from triggerfish.api.sigv4 import load_access_key
from triggerfish.api.trust import Trust
from triggerfish.app import DEFAULT_HOST, DEFAULT_PORT, App
from triggerfish.cli import log_lines, template_options
from triggerfish.cli.cluster_options import CLUSTER, CLUSTER_BOOTSTRAP, REPLICA_ID, cluster_config
from triggerfish.cli.template_options import ENV_VARS, KAFKA_BOOTSTRAP, OVERRIDES, PARAMETER_OVERRIDES, TEMPLATE
from triggerfish.secrets import ReferencePolicy

# Logs piped to a file or journald are not wrapped at 80 columns.
#: How long a stop may take before every thread's stack is written to standard error (it goes on waiting).
STOP_DUMP_S = 45.0
_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=200)


def run(
    config: Path = typer.Option(Path("triggerfish.yaml"), "--config", "-c", help="the triggerfish.yaml to run"),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="control API port (0 = any free port)"),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="control API address"),
    no_api: bool = typer.Option(False, "--no-api", help="do not serve the control API"),
    require_auth: bool = typer.Option(
        False, "--require-auth",
        help="verify SigV4 signatures against TRIGGERFISH_ACCESS_KEY_ID / TRIGGERFISH_SECRET_ACCESS_KEY",
    ),
    auth_secret: str | None = typer.Option(
        None, "--auth-secret",
        help='with --require-auth: secret reference (arn:aws:secretsmanager:..., file://, env:VAR) holding '
             '{"AccessKeyId": ..., "SecretAccessKey": ...}',
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="allow a non-loopback --host without --require-auth (a network policy or proxy protects it)",
    ),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="also answer requests whose Host is NAME (repeatable; * = any)", metavar="NAME",
    ),
    allowed_origin: list[str] = typer.Option(
        [], "--allowed-origin", help="let web pages from ORIGIN (e.g. https://console.example) call the control API "
                                     "(repeatable)", metavar="ORIGIN",
    ),
    secret_file_root: list[str] = typer.Option(
        [], "--secret-file-root", help="mappings created through the API may read file:// secrets under DIR "
                                       "(repeatable; default: none)", metavar="DIR",
    ),
    secret_env_prefix: list[str] = typer.Option(
        [], "--secret-env-prefix", help="mappings created through the API may read env:VAR secrets whose name "
                                        "starts with PREFIX (repeatable; default: none)", metavar="PREFIX",
    ),
    state: Path | None = typer.Option(None, "--state", help="SQLite state file (default: .triggerfish/state.db next to the config)"),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error"),
    cluster: str | None = CLUSTER,
    cluster_bootstrap: str | None = CLUSTER_BOOTSTRAP,
    replica_id: str | None = REPLICA_ID,
    template: Path | None = TEMPLATE,
    parameter_overrides: list[str] = PARAMETER_OVERRIDES,
    env_vars: Path | None = ENV_VARS,
    kafka_bootstrap: list[str] = KAFKA_BOOTSTRAP,
    overrides: Path | None = OVERRIDES,
) -> None:
    """Run functions on Kafka records, as Lambda's Kafka event source mapping does."""
    # validates everything before touching Kafka
    loaded = template_options.load(config, template, parameter_overrides, env_vars, kafka_bootstrap, overrides)
    project = loaded.project
    fleet = cluster_config(project.cluster, cluster, cluster_bootstrap, replica_id)
    access_key = load_access_key(auth_secret) if require_auth or auth_secret else None
    log_lines.setup_logging(log_level)
    log = logging.getLogger("triggerfish")
    # One line each, never wrapped: a template can list many resources.
    if loaded.not_run:
        _console.print(f"not run here (they exist only in AWS): {escape(', '.join(loaded.not_run))}", style="dim",
                       soft_wrap=True, highlight=False)
    for line in loaded.skipped:
        _console.print(escape(line), style="yellow", soft_wrap=True, highlight=False)
    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(signum: int, _frame: Any) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            _console.print("[red]second signal: exiting without waiting for in-flight batches[/]")
            os._exit(130)
        log.info("%s received: finishing in-flight batches, committing, leaving the group",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    trust = Trust(allowed_hosts=tuple(allowed_host), allowed_origins=tuple(allowed_origin),
                  secrets=ReferencePolicy(tuple(secret_file_root), tuple(secret_env_prefix)))
    app = App.from_project(project, state=state, api=not no_api, host=host, port=port, access_key=access_key,
                           insecure=insecure, trust=trust, log_sink=log_lines.HandlerOutput(), cluster=fleet)
    with app:
        where = (f"replica {fleet.replica_id} of cluster {fleet.name}" if fleet is not None
                 else f"state in {app.store.path}")
        log.info("triggerfish running %d function(s), %d mapping(s)%s; %s", len(project.functions),
                 len(app.engine.list()), f", control API on {app.url}" if app.url is not None else "", where)
        while not stop.wait(0.5):
            pass
        # A stop stuck somewhere (in-flight batches get up to 60 s) leaves every thread's stack in the log.
        faulthandler.dump_traceback_later(STOP_DUMP_S)
    faulthandler.cancel_dump_traceback_later()
    log.info("stopped cleanly")
    sys.exit(0)
