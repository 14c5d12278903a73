"""The fleet's view of one mapping, merged from what the live replicas report: pure policy, no I/O.

Each replica reports its own ``MappingStatus.to_dict()``; ``merge`` makes one status of them with the
same keys, plus ``Replicas`` (one line per replica) and an ``owner`` per partition:

* Partitions: those assigned on a live replica; two claims of one partition (mid-rebalance): the newer
  record wins.
* State: a disabled config shows the replicas' Disabling/Disabled; an enabled one is still changing
  (Deleting, Updating, Creating, Enabling, in that order) while any replica is, then Enabled; Creating
  when nobody reports.
* LastProcessingResult: a ``PROBLEM:`` from any replica wins (``Problem`` names the replica), else the
  most recently modified result of a replica that processed records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from triggerfish.esm.state import (
    CREATING,
    DELETING,
    DISABLED,
    DISABLING,
    ENABLED,
    ENABLING,
    NO_RECORDS,
    UPDATING,
    USER_INITIATED,
)

#: The first of these any replica reports names the fleet's state: the change is not in force everywhere yet.
_CHANGING = (DELETING, UPDATING, CREATING, ENABLING)


def is_live(heartbeat: float | None, now: float, session_timeout_s: float) -> bool:
    """A replica is live while its last heartbeat (epoch seconds, the broker's clock) is that recent."""
    return heartbeat is not None and now - heartbeat <= session_timeout_s


def merge(statuses: Mapping[str, Mapping[str, Any]], replicas: Mapping[str, Mapping[str, Any]] | None = None,
          enabled: bool = True) -> dict[str, Any]:
    """One mapping's fleet status from its live replicas' reports.

    ``statuses``: replica id -> its ``status/<uuid>/<replica>`` record's value (``"status"``: the
    MappingStatus dict) with ``"time"``, the record's timestamp (epoch seconds); pass live replicas only.
    ``replicas``: replica id -> its ``replica/<id>`` heartbeat value (for ``Host``).
    """
    replicas = replicas or {}
    reports = {rid: dict(rec.get("status") or {}) for rid, rec in statuses.items()}
    times = {rid: float(rec.get("time") or 0.0) for rid, rec in statuses.items()}
    partitions = _partitions(reports, times)
    state = _state([str(r.get("State", CREATING)) for r in reports.values()], enabled)
    problem_from = _problem_replica(reports)
    # A replica that owns nothing reports "No records processed" forever: it says nothing of the fleet.
    processed = {rid: r for rid, r in reports.items() if r.get("LastProcessingResult", NO_RECORDS) != NO_RECORDS}
    result_from = problem_from or _latest(processed) or _latest(reports)
    in_state = [rid for rid, r in reports.items() if r.get("State") == state]
    reason_from = problem_from if problem_from in in_state else (_latest({r: reports[r] for r in in_state})
                                                                  or result_from)
    chosen = reports.get(result_from or "", {})
    problem: dict[str, Any] | None = None
    if problem_from is not None and reports[problem_from].get("Problem"):
        problem = {**reports[problem_from]["Problem"], "replica": problem_from}
    owned = Counter(p["owner"] for p in partitions)
    return {
        "State": state,
        "StateTransitionReason": reports.get(reason_from or "", {}).get("StateTransitionReason", USER_INITIATED),
        "LastProcessingResult": chosen.get("LastProcessingResult", NO_RECORDS),
        "LastModified": max((float(r.get("LastModified") or 0.0) for r in reports.values()), default=0.0),
        "Partitions": partitions,
        "Stages": list(chosen.get("Stages") or []),
        "Problem": problem,
        "Invocations": sum(int(r.get("Invocations") or 0) for r in reports.values()),
        "Records": sum(int(r.get("Records") or 0) for r in reports.values()),
        "Errors": sum(int(r.get("Errors") or 0) for r in reports.values()),
        "Host": chosen.get("Host", ""),
        "Replicas": [
            {"Id": rid, "Host": str((replicas.get(rid) or {}).get("host") or r.get("Host") or ""),
             "State": r.get("State", CREATING), "LastProcessingResult": r.get("LastProcessingResult", NO_RECORDS),
             "Partitions": owned.get(rid, 0)}
            for rid, r in sorted(reports.items())
        ],
    }


def _partitions(reports: Mapping[str, Mapping[str, Any]], times: Mapping[str, float]) -> list[dict[str, Any]]:
    claims: dict[tuple[str, int], tuple[tuple[float, float, str], dict[str, Any]]] = {}
    for rid, report in reports.items():
        newness = (times.get(rid, 0.0), float(report.get("LastModified") or 0.0), rid)
        for p in report.get("Partitions") or []:
            if not p.get("assigned", True):
                continue
            key = (str(p["topic"]), int(p["partition"]))
            if key not in claims or newness > claims[key][0]:
                claims[key] = (newness, {**p, "owner": rid})
    return [claims[key][1] for key in sorted(claims)]


def _state(states: list[str], enabled: bool) -> str:
    if not enabled:
        # until every replica has stopped it, the fleet is still disabling it
        return DISABLED if states and all(s == DISABLED for s in states) else (DISABLING if states else DISABLED)
    if not states:
        return CREATING
    # A change is in force when every replica has applied it: until then the fleet is still changing
    # (and a replica still applying it refuses another update, as Lambda does in these states).
    changing = [s for s in _CHANGING if s in states]
    if changing:
        return changing[0]
    if ENABLED in states:
        return ENABLED
    return ENABLING  # the replicas report Disabled: the enable has not reached them yet


def _problem_replica(reports: Mapping[str, Mapping[str, Any]]) -> str | None:
    troubled = {rid: r for rid, r in reports.items() if str(r.get("LastProcessingResult", "")).startswith("PROBLEM")}
    return _latest(troubled)


def _latest(reports: Mapping[str, Mapping[str, Any]]) -> str | None:
    if not reports:
        return None
    return max(reports, key=lambda rid: (float(reports[rid].get("LastModified") or 0.0), rid))
