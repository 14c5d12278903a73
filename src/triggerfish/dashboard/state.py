"""The dashboard's document (``GET /dashboard/state.json``), shared by the page and by scripts.

Built from what the process already knows, in Lambda's vocabulary where Lambda has a word for it:

* ``Mappings``: each mapping as the control API's GetEventSourceMapping shows it (State,
  StateTransitionReason, LastProcessingResult; fleet-wide in a fleet), plus the ``Problem`` behind a
  ``PROBLEM:`` (Stage, Detail, Fix), the setup ``Stages`` with their durations, the partitions with their
  offsets, lag and owner, and ``Lag``: per-partition samples of the last hour (``history``).
* ``Functions``: Invocations, Errors, Throttles and Duration percentiles per function (``functions.stats``),
  plus the records its mappings sent it (the ``triggerfish_esm_*`` metrics).
* ``Failures``: the last records sent to on-failure destinations (``esm.failures``).
* ``Cluster``: in a fleet, every replica and the partitions it owns; else null.

Nothing here holds a secret: mapping configurations are reduced to names, sizes and positions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import REGISTRY

from triggerfish.dashboard.history import LagHistory
from triggerfish.dashboard.lags import FleetView
from triggerfish.esm import failures
from triggerfish.esm.engine import Engine
from triggerfish.esm.state import EventSourceMapping
from triggerfish.functions.stats import STATS

#: Bumped when a member changes meaning or goes away (members may be added without it).
VERSION = 1
_SHOWN_CONFIG = ("Topics", "BatchSize", "MaximumBatchingWindowInSeconds", "StartingPosition", "FunctionArn")


class FunctionLike(Protocol):
    """A function as the control API lists it (``api.backend.FunctionInfo``)."""

    @property
    def name(self) -> str: ...
    @property
    def reserved_concurrency(self) -> int | None: ...


class Source(Protocol):
    """What the document is built from: the control API's backend (``api.backend.Backend``)."""

    def list_functions(self) -> Sequence[FunctionLike]: ...
    async def list_mappings(self) -> list[dict[str, Any]]: ...


def _problem(status: dict[str, Any] | None, fleet: dict[str, Any] | None) -> dict[str, Any] | None:
    found = (fleet or {}).get("Problem") or (status or {}).get("Problem")
    if not found:
        return None
    return {"Text": found.get("text", ""), "Stage": found.get("stage", ""), "Detail": found.get("detail", ""),
            "Fix": found.get("fix", ""), "Replica": found.get("replica")}


def _stages(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"Stage": s.get("stage", ""), "Target": s.get("target", ""), "Status": s.get("status", ""),
             "DurationMs": s.get("duration_ms"), "Detail": s.get("detail", ""), "Fix": s.get("fix", "")}
            for s in stages]


def _partitions(status: dict[str, Any] | None, fleet: dict[str, Any] | None) -> list[dict[str, Any]]:
    if fleet is not None:
        parts = fleet.get("Partitions", [])
    else:
        parts = [p for p in (status or {}).get("Partitions", []) if p.get("assigned", True)]
    return [{"Topic": p["topic"], "Partition": p["partition"], "CommittedOffset": p.get("committed"),
             "EndOffset": p.get("high_watermark"), "Lag": p.get("lag"), "Owner": p.get("owner")} for p in parts]


def mapping_entry(api: dict[str, Any], local: EventSourceMapping | None, fleet: dict[str, Any] | None,
                  history: LagHistory, now: float) -> dict[str, Any]:
    """One mapping: ``api`` is its GetEventSourceMapping answer, ``local`` this engine's view, ``fleet`` the fleet's."""
    status = local.status.to_dict() if local is not None else None
    source = fleet if fleet is not None else status or {}
    uuid = str(api.get("UUID", ""))
    return {
        "UUID": uuid,
        "FunctionName": local.config.function if local is not None else str(api.get("FunctionArn", "")).split(":")[-1],
        **{k: api[k] for k in _SHOWN_CONFIG if k in api},
        "Enabled": local.config.enabled if local is not None else api.get("State") not in ("Disabled", "Disabling"),
        "State": api.get("State"),
        "StateTransitionReason": api.get("StateTransitionReason"),
        "LastProcessingResult": api.get("LastProcessingResult"),
        "LastModified": api.get("LastModified"),
        "Problem": _problem(status, fleet),
        "Stages": _stages(list(source.get("Stages") or [])),
        "Partitions": _partitions(status, fleet),
        "Invocations": source.get("Invocations", 0),
        "Records": source.get("Records", 0),
        "Errors": source.get("Errors", 0),
        "Lag": history.series(uuid, now),
    }


def _sample(name: str, labels: dict[str, str]) -> int:
    return int(REGISTRY.get_sample_value(name, labels) or 0)


def function_entries(backend: Source, mappings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Invocations, errors, throttles and duration percentiles per function, and what its mappings sent it."""
    by_function: dict[str, list[str]] = defaultdict(list)
    for m in mappings:
        by_function[m["FunctionName"]].append(m["UUID"])
    out = []
    for info in backend.list_functions():
        s = STATS.summary(info.name)
        sent = [{"function": info.name, "uuid": u} for u in by_function.get(info.name, [])]
        out.append({
            "FunctionName": info.name,
            "ReservedConcurrentExecutions": info.reserved_concurrency,
            "Invocations": s.invocations, "Errors": s.errors, "Throttles": s.throttles,
            "Duration": {"Count": s.durations, "P50Ms": s.p50_ms, "P90Ms": s.p90_ms, "P99Ms": s.p99_ms,
                         "MaxMs": s.max_ms},
            "LastInvoked": s.last_invoked,
            "MappingRecordsInvoked": sum(_sample("triggerfish_esm_invoked_events_total", x) for x in sent),
            "MappingInvokeErrors": sum(_sample("triggerfish_esm_invoke_errors_total", x) for x in sent),
            "Mappings": by_function.get(info.name, []),
        })
    return out


def cluster_entry(fleet: FleetView | None, mappings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Every replica of the fleet with the partitions it owns (None outside a fleet)."""
    if fleet is None:
        return None
    owned: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in mappings:
        for p in m["Partitions"]:
            if p.get("Owner"):
                owned[str(p["Owner"])].append({"MappingUUID": m["UUID"], "Topic": p["Topic"], "Partition": p["Partition"]})
    replicas = []
    for r in fleet.replicas():
        rid = str(r.get("id") or "")
        replicas.append({"Id": rid, "Host": r.get("host") or "", "Pid": r.get("pid"), "Api": r.get("api"),
                         "HeartbeatAgeSeconds": r.get("heartbeat"), "Partitions": owned.get(rid, [])})
    return {"Problem": fleet.problem(), "Replicas": replicas}


async def build(backend: Source, history: LagHistory, now: float) -> dict[str, Any]:
    """The whole document."""
    engine: Engine | None = getattr(backend, "engine", None)
    fleet_view: FleetView | None = getattr(backend, "fleet", None)
    local = {m.uuid: m for m in engine.list()} if engine is not None else {}
    mappings = []
    for api in await backend.list_mappings():
        uuid = str(api.get("UUID", ""))
        found = local.get(uuid)
        enabled = found.config.enabled if found is not None else True
        fleet = fleet_view.fleet(uuid, enabled=enabled) if fleet_view is not None else None
        mappings.append(mapping_entry(api, found, fleet, history, now))
    mappings.sort(key=lambda m: (str(m["FunctionName"]), m["UUID"]))
    return {
        "Version": VERSION,
        "GeneratedAt": now,
        "LagSpanSeconds": history.span_s,
        "Mappings": mappings,
        "Functions": function_entries(backend, mappings),
        "Failures": [f.to_dict() for f in failures.RECENT.recent()],
        "Cluster": cluster_entry(fleet_view, mappings),
    }
