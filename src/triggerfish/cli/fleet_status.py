"""``triggerfish status`` of a fleet: every mapping's fleet-wide state, each partition's owner and lag,
and the live replicas — read from the cluster's topics, so it works from any machine that reaches them.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

from triggerfish.cluster.board import read_board
from triggerfish.cluster.catalog import file_mapping_uuid
from triggerfish.cluster.config import ClusterConfig
from triggerfish.cluster.configlog import read_configs
from triggerfish.config import ProjectConfig
from triggerfish.esm.catalog import FILE, summary
from triggerfish.esm.config import MappingConfig


def collect(cfg: ClusterConfig, project: ProjectConfig | None) -> dict[str, Any]:
    """The fleet status document (``--json`` prints it as is)."""
    definitions = read_configs(cfg)
    board = read_board(cfg)
    summaries: dict[str, dict[str, Any]] = dict(board.mappings())
    for uuid, entry in definitions.items():
        summaries[uuid] = summary(MappingConfig.from_dict(entry.config).replace(uuid=uuid), entry.origin)
    for mapping in project.mappings if project is not None else ():
        uuid = mapping.uuid or file_mapping_uuid(cfg.name, mapping)
        summaries.setdefault(uuid, summary(mapping.replace(uuid=uuid), FILE))
    mappings = []
    for uuid, shown in summaries.items():
        fleet = board.fleet(uuid, enabled=bool(shown.get("Enabled", True))) or {}
        mappings.append({
            "UUID": uuid, **shown,
            "State": fleet.get("State", "Creating"),
            "StateTransitionReason": fleet.get("StateTransitionReason", ""),
            "LastProcessingResult": fleet.get("LastProcessingResult", "No records processed"),
            "Problem": fleet.get("Problem"),
            "Replicas": fleet.get("Replicas", []),
            "Partitions": [
                {"Partition": f"{p['topic']}-{p['partition']}", "Owner": p.get("owner"),
                 "CommittedOffset": p.get("committed"), "EndOffset": p.get("high_watermark"), "Lag": p.get("lag")}
                for p in fleet.get("Partitions", [])
            ],
        })
    replicas = [{"Id": r["id"], "Host": r.get("host"), "Pid": r.get("pid"), "Started": r.get("started"),
                 "Api": r.get("api"), "Mappings": r.get("mappings") or []} for r in board.replicas]
    return {"Cluster": cfg.name, "BootstrapServers": list(cfg.bootstrap_servers), "Replicas": replicas,
            "EventSourceMappings": mappings}


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


_COLOURS = {"Enabled": "green", "Disabled": "yellow"}


def show(console: Console, doc: dict[str, Any]) -> None:
    """The fleet as people scan it: the replicas, then one row per partition with its owner."""
    replicas = doc["Replicas"]
    colour = "green" if replicas else "yellow"
    console.print(f"[{colour}]cluster {doc['Cluster']}[/]: {len(replicas)} live replica(s)")
    for r in replicas:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["Started"])) if r.get("Started") else "-"
        api = f", control API {r['Api']}" if r.get("Api") else ""
        console.print(f"  [bold]{r['Id']}[/] (pid {_fmt(r['Pid'])} on {_fmt(r['Host'])}, since {since}{api}; "
                      f"{len(r['Mappings'])} mapping(s))")
    table = Table(header_style="bold")
    for col in ("UUID", "Function", "State", "LastProcessingResult", "Partition", "Owner", "Committed", "End", "Lag"):
        table.add_column(col, overflow="fold", justify="right" if col in ("Committed", "End", "Lag") else "left",
                         no_wrap=col in ("State", "Committed", "End", "Lag"))
    for m in doc["EventSourceMappings"]:
        result = m["LastProcessingResult"]
        style = "red" if result.startswith("PROBLEM") else ("green" if result == "OK" else "dim")
        head = [m["UUID"][:8], m.get("FunctionName") or "", f"[{_COLOURS.get(m['State'], 'cyan')}]{m['State']}[/]",
                f"[{style}]{result}[/]"]
        parts = m["Partitions"] or [{"Partition": "-", "Owner": None, "CommittedOffset": None, "EndOffset": None,
                                     "Lag": None}]
        for i, p in enumerate(parts):
            lag = p["Lag"]
            cells = head if i == 0 else [""] * len(head)
            table.add_row(*cells, p["Partition"], _fmt(p["Owner"]), _fmt(p["CommittedOffset"]), _fmt(p["EndOffset"]),
                          _fmt(lag) if not lag else f"[yellow]{lag}[/]")
    console.print(table)
    for m in doc["EventSourceMappings"]:
        problem = m.get("Problem")
        if problem:
            console.print(f"[red]{m['UUID']}[/]: {problem.get('detail') or m['LastProcessingResult']}")
            if problem.get("fix"):
                console.print(f"  [bold]fix:[/] {problem['fix']}")
