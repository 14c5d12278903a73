"""``triggerfish status [--json]``: each mapping's State, StateTransitionReason, LastProcessingResult
and per-partition committed offset and lag, as the running (or last) engine recorded them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from triggerfish import config as project_config
from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import ConfigError
from triggerfish.esm.store import Store


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _collect(store: Store) -> dict[str, Any]:
    """The status document: the engine process and every mapping with its partitions."""
    engine = store.get("engine")
    running = bool(engine and _alive(int(engine.get("pid", 0))))
    mappings = []
    for row in store.mappings():
        cfg = row["config"]
        saved = store.status(row["uuid"])
        status, updated = saved if saved else ({}, None)
        gid = (cfg.get("SelfManagedKafkaEventSourceConfig") or cfg.get("AmazonManagedKafkaEventSourceConfig") or {}).get(
            "ConsumerGroupId") or row["uuid"]
        mappings.append({
            "UUID": row["uuid"],
            "FunctionName": cfg.get("FunctionName"),
            "Topics": cfg.get("Topics"),
            "ConsumerGroupId": gid,
            "Origin": row["origin"],
            "State": status.get("State", "Creating") if running else ("Stopped" if status else "Creating"),
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
    return {"Engine": {"Running": running, **(engine or {})}, "EventSourceMappings": mappings}


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def status(
    config: Path = typer.Option(Path("triggerfish.yaml"), "--config", "-c", help="the triggerfish.yaml that was run"),
    state: Path | None = typer.Option(None, "--state", help="the SQLite state file (instead of --config)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show each mapping's State, LastProcessingResult and per-partition offsets and lag."""
    if state is None:
        state = project_config.load(config).state_path
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
    engine = doc["Engine"]
    if engine["Running"]:
        since = time.strftime("%H:%M:%S", time.localtime(engine.get("started", 0)))
        api = f", control API {engine['api']}" if engine.get("api") else ""
        console.print(f"[green]engine running[/] (pid {engine['pid']}, since {since}{api})")
    else:
        console.print("[yellow]engine not running[/]: showing the last recorded status")
    table = Table(show_lines=False, header_style="bold")
    for col in ("UUID", "Function", "State", "StateTransitionReason", "LastProcessingResult",
                "Partition", "Committed", "End", "Lag"):
        table.add_column(col, overflow="fold", justify="right" if col in ("Committed", "End", "Lag") else "left",
                         no_wrap=col in ("State", "Committed", "End", "Lag"))
    colours = {"Enabled": "green", "Disabled": "yellow", "Stopped": "dim"}
    for m in doc["EventSourceMappings"]:
        result = m["LastProcessingResult"]
        result_style = "red" if result.startswith("PROBLEM") else ("green" if result == "OK" else "dim")
        head = [
            m["UUID"][:8], m["FunctionName"] or "",
            f"[{colours.get(m['State'], 'cyan')}]{m['State']}[/]", m["StateTransitionReason"],
            f"[{result_style}]{result}[/]",
        ]
        parts = m["Partitions"] or [{"Partition": "-", "CommittedOffset": None, "EndOffset": None, "Lag": None}]
        for i, p in enumerate(parts):
            lag = p["Lag"]
            lag_text = _fmt(lag) if not lag else f"[yellow]{lag}[/]"
            cells = head if i == 0 else [""] * len(head)
            table.add_row(*cells, p["Partition"], _fmt(p["CommittedOffset"]), _fmt(p["EndOffset"]), lag_text)
    console.print(table)
    console.print("[dim]UUIDs shortened; --json shows them whole, with consumer groups and setup stages[/]")
    for m in doc["EventSourceMappings"]:
        if m.get("Problem"):
            problem = Diagnosis.from_problem_dict(m["Problem"])
            console.print(f"[red]{m['UUID']}[/]: {problem.detail}")
            if problem.fix:
                console.print(f"  [bold]fix:[/] {problem.fix}")
