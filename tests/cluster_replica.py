"""A cluster replica in its own process, for the cluster tests (a second ConfigLog writer, a board to SIGKILL).

    python tests/cluster_replica.py configlog NAME REPLICA_ID   # commands on stdin, JSON answers on stdout
        write KEY VERSION AT   compare-and-set KEY (VERSION: the offset it must be at, or "none"), at epoch AT
        dump                   {"entries": {uuid: version}, "changes": [[uuid, version or null], ...]}
    python tests/cluster_replica.py board NAME REPLICA_ID SESSION_TIMEOUT UUID
        publishes UUID with partition 0 of topic "t" assigned, prints "ready", then waits to be killed
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from triggerfish.cluster.board import StatusBoard
from triggerfish.cluster.config import ClusterConfig
from triggerfish.cluster.configlog import ConfigLog, Entry
from triggerfish.errors import ConcurrentChange, TriggerfishError
from triggerfish.localkafka.broker import DEFAULT_PORT_BASE

#: The session's broker (TRIGGERFISH_KAFKA_PORT_BASE moves it, for the parent test and for this child alike).
BOOTSTRAP = (f"127.0.0.1:{DEFAULT_PORT_BASE}",)


def delete_cluster_topics(admin: Any, cfg: ClusterConfig) -> None:
    """Delete a test cluster's two topics (those that exist)."""
    for future in admin.delete_topics([cfg.configs_topic, cfg.status_topic]).values():
        try:
            future.result(timeout=30)
        except Exception:
            pass  # never created


def version_check(key: str, expected: int | None) -> Any:
    """The engine's optimistic check: ``key`` must still be at ``expected`` (None: absent)."""

    def check(entries: Mapping[str, Entry]) -> None:
        current = entries.get(key)
        version = current.version if current is not None else None
        if version != expected:
            writer = current.writer if current is not None else "?"
            raise ConcurrentChange(f"{key} was changed by another request (replica {writer})", key)

    return check


def serve_configlog(name: str, replica: str) -> None:
    changes: list[list[Any]] = []
    log = ConfigLog(ClusterConfig(name=name, bootstrap_servers=BOOTSTRAP, replica_id=replica),
                    lambda uuid, entry: changes.append([uuid, entry.version if entry else None]))
    log.start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[0] == "write":
            key, expected, at = words[1], None if words[2] == "none" else int(words[2]), float(words[3])
            time.sleep(max(0.0, at - time.time()))
            try:
                offset = log.write(key, {"by": replica}, version_check(key, expected))
                print(json.dumps({"ok": offset}), flush=True)
            except TriggerfishError as exc:
                print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
        elif words[0] == "dump":
            entries = {u: e.version for u, e in log.entries().items()}
            print(json.dumps({"entries": entries, "changes": changes}), flush=True)
    log.stop()


def serve_board(name: str, replica: str, session_timeout: float, uuid: str) -> None:
    board = StatusBoard(ClusterConfig(name=name, bootstrap_servers=BOOTSTRAP, replica_id=replica,
                                      session_timeout_s=session_timeout))
    board.start()
    board.publish(uuid, {"FunctionName": "f"}, {
        "State": "Enabled", "LastProcessingResult": "OK", "LastModified": time.time(),
        "Partitions": [{"topic": "t", "partition": 0, "assigned": True, "committed": 1, "high_watermark": 2, "lag": 1}],
    })
    print("ready", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    if sys.argv[1] == "configlog":
        serve_configlog(sys.argv[2], sys.argv[3])
    else:
        serve_board(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
