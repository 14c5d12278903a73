"""``triggerfish status [--json]``: each mapping's State, StateTransitionReason, LastProcessingResult
and per-partition committed offset and lag, as the running (or last) engine recorded them, and every
live engine process using the state file (pid, host, start time, the mappings it runs). For a fleet
(``--cluster`` or the config's ``Cluster``) the same, fleet-wide, with each partition's owner
(``cli/fleet_status.py``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from triggerfish.cli import fleet_status, template_options
from triggerfish.cli.cluster_options import CLUSTER, CLUSTER_BOOTSTRAP, cluster_config
from triggerfish.cli.template_options import ENV_VARS, KAFKA_BOOTSTRAP, OVERRIDES, PARAMETER_OVERRIDES, TEMPLATE
from triggerfish.cluster.config import ClusterConfig
from triggerfish.config import ProjectConfig
from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import ConfigError
from triggerfish.esm.presence import live_processes
from triggerfish.esm.store import Store


def _collect(store: Store) -> dict[str, Any]:
    """The status document: the engine processes using the state file and every mapping with its partitions."""
    engines = [
        {"Pid": p["pid"], "Host": p["host"], "Started": p["started"], "Heartbeat": p["heartbeat"],
         "Config": p.get("config"), "Api": p.get("api"), "Mappings": p.get("mappings") or []}
        for p in live_processes(store)
    ]
    running = bool(engines)
    mappings = []
    for row in store.mappings():
        cfg = row["config"]
        saved = store.status(row["uuid"])
        run_by = [e for e in engines if row["uuid"] in e["Mappings"]]
        status, updated = saved if saved else ({}, None)
        gid = (cfg.get("SelfManagedKafkaEventSourceConfig") or cfg.get("AmazonManagedKafkaEventSourceConfig") or {}).get(
            "ConsumerGroupId") or row["uuid"]
        mappings.append({
            "UUID": row["uuid"],
            "FunctionName": cfg.get("FunctionName"),
            "Topics": cfg.get("Topics"),
            "ConsumerGroupId": gid,
            "Origin": row["origin"],
            # Shown as running only while a live process runs it: another process's status row goes stale.
            "State": status.get("State", "Creating") if run_by else ("Stopped" if status else "Creating"),
            "RunBy": [f"{e['Host']}:{e['Pid']}" for e in run_by],
            "StateTransitionReason": status.get("StateTransitionReason", ""),
            "LastProcessingResult": status.get("LastProcessingResult", "No records processed"),
            "Problem": status.get("Problem"),
            "Stages": status.get("Stages", []),
            "Invocations": status.get("Invocations", 0),
            "Records": status.get("Records", 0),
            "Errors": status.get("Errors", 0),
            "Partitions": [
                {"Partition": f"{p['topic']}-{p['partition']}", "CommittedOffset": p.get("committed"),
                 "EndOffset": p.get("high_watermark"), "Lag": p.get("lag"), "Assigned": p.get("assigned", False)}
                for p in status.get("Partitions", [])
            ],
            "StatusUpdated": updated,
        })
    first = engines[0] if engines else {}
    return {"Engine": {"Running": running, "pid": first.get("Pid"), "started": first.get("Started"),
                       "api": first.get("Api")},
            "Engines": engines, "EventSourceMappings": mappings}


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def status(
    config: Path = typer.Option(Path("triggerfish.yaml"), "--config", "-c", help="the triggerfish.yaml that was run"),
    state: Path | None = typer.Option(None, "--state", help="the SQLite state file (instead of --config)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    cluster: str | None = CLUSTER,
    cluster_bootstrap: str | None = CLUSTER_BOOTSTRAP,
    template: Path | None = TEMPLATE,
    parameter_overrides: list[str] = PARAMETER_OVERRIDES,
    env_vars: Path | None = ENV_VARS,
    kafka_bootstrap: list[str] = KAFKA_BOOTSTRAP,
    overrides: Path | None = OVERRIDES,
) -> None:
    """Show each mapping's State, LastProcessingResult and per-partition offsets and lag."""
    project = None
    if state is None and (template is not None or config.exists() or not cluster):
        project = template_options.load(config, template, parameter_overrides, env_vars, kafka_bootstrap,
                                        overrides).project
    fleet = cluster_config(project.cluster if project else None, cluster, cluster_bootstrap, None)
    if fleet is not None:
        _show_fleet(fleet, project, as_json)
        return
    if state is None:
        assert project is not None
        state = project.state_path
    if not Path(state).exists():
        raise ConfigError("--state", f"{state} does not exist yet; start `triggerfish run` first")
    store = Store(state)
    try:
        doc = _collect(store)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    # Piped output is not squeezed into 80 columns; a terminal gets its own width.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    _print_engines(console, doc["Engines"], state)
    console.print(_table(doc["EventSourceMappings"]))
    console.print("[dim]UUIDs shortened; --json shows them whole, with consumer groups and setup stages[/]")
    _print_problems(console, doc["EventSourceMappings"])


def _show_fleet(fleet: ClusterConfig, project: ProjectConfig | None,
                as_json: bool) -> None:
    doc = fleet_status.collect(fleet, project)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    fleet_status.show(Console() if sys.stdout.isatty() else Console(width=200), doc)


def _print_engines(console: Console, engines: list[dict[str, Any]], state: Path) -> None:
    if len(engines) > 1:
        console.print(f"[yellow]state file {state} is in use by {len(engines)} live engine processes[/]")
    for engine in engines:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(engine["Started"]))
        api = f", control API {engine['Api']}" if engine.get("Api") else ""
        config_file = f", config {engine['Config']}" if engine.get("Config") else ""
        console.print(f"[green]engine running[/] (pid {engine['Pid']} on {engine['Host']}, since {since}"
                      f"{config_file}{api}; {len(engine['Mappings'])} mapping(s))")
    if not engines:
        console.print("[yellow]engine not running[/]: showing the last recorded status")


_COLOURS = {"Enabled": "green", "Disabled": "yellow", "Stopped": "dim"}


def _table(mappings: list[dict[str, Any]]) -> Table:
    table = Table(show_lines=False, header_style="bold")
    for col in ("UUID", "Function", "State", "StateTransitionReason", "LastProcessingResult",
                "Partition", "Committed", "End", "Lag"):
        table.add_column(col, overflow="fold", justify="right" if col in ("Committed", "End", "Lag") else "left",
                         no_wrap=col in ("State", "Committed", "End", "Lag"))
    for m in mappings:
        result = m["LastProcessingResult"]
        result_style = "red" if result.startswith("PROBLEM") else ("green" if result == "OK" else "dim")
        head = [
            m["UUID"][:8], m["FunctionName"] or "",
            f"[{_COLOURS.get(m['State'], 'cyan')}]{m['State']}[/]", m["StateTransitionReason"],
            f"[{result_style}]{result}[/]",
        ]
        parts = m["Partitions"] or [{"Partition": "-", "CommittedOffset": None, "EndOffset": None, "Lag": None}]
        for i, p in enumerate(parts):
            lag = p["Lag"]
            lag_text = _fmt(lag) if not lag else f"[yellow]{lag}[/]"
            cells = head if i == 0 else [""] * len(head)
            table.add_row(*cells, p["Partition"], _fmt(p["CommittedOffset"]), _fmt(p["EndOffset"]), lag_text)
    return table


def _print_problems(console: Console, mappings: list[dict[str, Any]]) -> None:
    for m in mappings:
        if m.get("Problem"):
            problem = Diagnosis.from_problem_dict(m["Problem"])
            console.print(f"[red]{m['UUID']}[/]: {problem.detail}")
            if problem.fix:
                console.print(f"  [bold]fix:[/] {problem.fix}")
