"""What each mapping partition's lag is now: from the fleet, from this engine, or read from Kafka.

A polling mapping's lag is what its consumer last saw (``MappingStatus`` partitions; in a fleet, every
replica's, merged by ``cluster.fleet``). A Disabled mapping has no consumer, yet records keep arriving:
:class:`LagProbe` asks Kafka for the group's committed offsets and the log end offsets with a client of the
mapping's own connection settings (kept open while the mapping stays disabled, closed when it polls again).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaException, TopicPartition

from triggerfish.dashboard.history import TP, LagHistory
from triggerfish.errors import TriggerfishError
from triggerfish.esm import auth
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.engine import Engine
from triggerfish.esm.state import DISABLED, EventSourceMapping

_log = logging.getLogger("triggerfish.dashboard")
_TIMEOUT_S = 5.0


class FleetView(Protocol):
    """This replica's view of its fleet (``api.engine.Fleet``)."""

    def fleet(self, uuid: str, *, enabled: bool = True) -> dict[str, Any] | None: ...
    def replicas(self) -> list[dict[str, Any]]: ...
    def problem(self) -> str | None: ...


class EngineSource(Protocol):
    """What the dashboard reads besides the control API (``api.engine.EngineBackend`` has both)."""

    engine: Engine | None
    fleet: FleetView | None


class LagProbe:
    """Reads the lag of mappings without a consumer; one client per mapping, used from one thread."""

    def __init__(self) -> None:
        self._clients: dict[str, tuple[str, Consumer]] = {}

    def lags(self, mapping: MappingConfig) -> dict[TP, int | None]:
        """Each partition of the mapping's topic: log end offset minus the group's committed offset (the log
        start offset when nothing is committed), None when Kafka does not answer."""
        uuid = mapping.uuid or ""
        try:
            consumer = self._client(mapping)
            topic = consumer.list_topics(mapping.topic, timeout=_TIMEOUT_S).topics.get(mapping.topic)
            if topic is None or topic.error is not None:
                return {}
            tps = [TopicPartition(mapping.topic, p) for p in sorted(topic.partitions)]
            out: dict[TP, int | None] = {}
            for tp in consumer.committed(tps, timeout=_TIMEOUT_S):
                low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=_TIMEOUT_S,
                                                           cached=False)
                base = tp.offset if tp.offset >= 0 else low
                out[(tp.topic, tp.partition)] = max(0, high - base) if high >= 0 and base >= 0 else None
            return out
        except (KafkaException, TriggerfishError, ValueError) as exc:
            _log.debug("dashboard: lag of %s not read: %s", uuid, exc)
            return {}

    def _client(self, mapping: MappingConfig) -> Consumer:
        uuid = mapping.uuid or ""
        identity = json.dumps(mapping.to_dict(), sort_keys=True, default=str)
        known = self._clients.get(uuid)
        if known is not None and known[0] == identity:
            return known[1]
        self.close(uuid)
        settings = {**auth.kafka_config(mapping), "group.id": mapping.group_id, "enable.auto.commit": False,
                    "client.id": f"triggerfish-dashboard-{uuid}", "log_level": 0}
        consumer = Consumer(settings, logger=_log)
        self._clients[uuid] = (identity, consumer)
        return consumer

    def keep(self, uuids: set[str]) -> None:
        """Close the clients of mappings that poll again or are gone."""
        for uuid in [u for u in self._clients if u not in uuids]:
            self.close(uuid)

    def close(self, uuid: str) -> None:
        known = self._clients.pop(uuid, None)
        if known is not None:
            known[1].close()


def current_lags(mapping: EventSourceMapping, fleet: dict[str, Any] | None) -> dict[TP, int | None]:
    """What the engine (or the fleet) knows of the mapping's partitions' lag now."""
    if fleet is not None:
        return {(str(p["topic"]), int(p["partition"])): p.get("lag") for p in fleet.get("Partitions", [])}
    return {(p.topic, p.partition): p.lag for p in mapping.status.partitions.values() if p.assigned}


class LagSampling:
    """One round of samples of every mapping of an engine backend (a ``history.SampleRound``)."""

    def __init__(self) -> None:
        self.probe = LagProbe()

    def __call__(self, source: Any, history: LagHistory, now: float) -> list[str]:
        engine: Engine | None = getattr(source, "engine", None)
        fleet_view: FleetView | None = getattr(source, "fleet", None)
        if engine is None:
            return []
        seen, probed = [], set()
        for mapping in engine.list():
            uuid = mapping.uuid
            seen.append(uuid)
            fleet = fleet_view.fleet(uuid, enabled=mapping.config.enabled) if fleet_view is not None else None
            if not mapping.config.enabled and mapping.status.state == DISABLED:
                probed.add(uuid)
                history.add(uuid, self.probe.lags(mapping.config), now)
            else:
                history.add(uuid, current_lags(mapping, fleet), now)
        self.probe.keep(probed)
        return seen
