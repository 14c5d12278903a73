"""``Replica``: this process as a member of a fleet — its catalog, its status board, and its health.

    replica = Replica(cluster_config)
    replica.start()                   # configs read to the end, first heartbeat sent
    Engine(runtime, Store(":memory:"), catalog=replica.catalog, status_sink=replica.board)
    replica.fleet(uuid)               # the mapping's fleet-wide status, partitions with their owners
    replica.problem()                 # None while this replica is connected to the cluster's Kafka and caught up
    replica.stop()                    # after the engine stopped: tombstones for this replica's status

Everything Kafka-specific lives in ``configlog`` and ``board``; this module only puts them together for
``triggerfish.app.App`` and the control API (``api.engine.Fleet``).
"""

from __future__ import annotations

from typing import Any

from triggerfish.cluster.board import StatusBoard
from triggerfish.cluster.catalog import ClusterCatalog
from triggerfish.cluster.config import ClusterConfig


class Replica:
    """One replica of a fleet: shared definitions in, this replica's status out, everyone's status in."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.config = cfg
        self.catalog = ClusterCatalog(cfg)
        self.board = StatusBoard(cfg)  # its ``api`` is set once the control API serves (App)

    @property
    def id(self) -> str:
        return self.config.replica_id

    def start(self, timeout: float = 30.0) -> None:
        """Read the definitions to the end and join the status board; on failure nothing is left running."""
        self.catalog.start(timeout)
        try:
            self.board.start(timeout)
        except BaseException:
            self.catalog.stop()
            raise

    def stop(self) -> None:
        try:
            self.board.stop()
        finally:
            self.catalog.stop()

    def fleet(self, uuid: str, *, enabled: bool = True) -> dict[str, Any] | None:
        return self.board.fleet(uuid, enabled=enabled)

    def replicas(self) -> list[dict[str, Any]]:
        return self.board.replicas()

    def problem(self) -> str | None:
        return self.catalog.log.problem() or self.board.problem()
