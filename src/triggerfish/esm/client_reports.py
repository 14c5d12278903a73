"""What a mapping's Kafka client reports (errors, statistics) turned into its status, metrics and log.

librdkafka calls ``error`` and ``stats`` from inside the mapping's poll. An error becomes Lambda's ``PROBLEM:``
text with triggerfish's detail (``problems.from_kafka_error``); a failed login asks the runner to run setup again
(``on_login_failed``: librdkafka would retry stale credentials forever); errors and statistics both feed the
``ConnectionWatch`` whose outage shows at once in the status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from triggerfish.esm import problems
from triggerfish.esm.auth import Auth
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.connection import ConnectionWatch
from triggerfish.esm.metrics import MappingMetrics
from triggerfish.esm.state import MappingStatus

_log = logging.getLogger("triggerfish.esm")


class ClientReports:
    """One mapping's client reports; ``connect`` after each setup (its login and brokers)."""

    def __init__(self, mapping: MappingConfig, status: MappingStatus, metrics: MappingMetrics, *,
                 save_status: Callable[[], None], on_login_failed: Callable[[], None]) -> None:
        self.mapping = mapping
        self.status = status
        self.metrics = metrics
        self._save_status = save_status
        self._on_login_failed = on_login_failed
        self.auth: Auth | None = None
        self.bootstrap: list[str] = list(mapping.bootstrap_servers)
        self.connection = ConnectionWatch(self.bootstrap)

    def connect(self, resolved: Auth) -> None:
        self.auth = resolved
        self.bootstrap = list(resolved.bootstrap)
        self.connection = ConnectionWatch(self.bootstrap)

    def error(self, err: Any) -> None:
        """librdkafka's ``error_cb`` (and errors carried by polled messages)."""
        try:
            name, text, fatal = err.name(), err.str(), err.fatal()
        except AttributeError:
            return
        self.metrics.polling_error()
        if self.connection.error(name, text):
            self.connection_changed()
        who = self.auth
        diagnosis = problems.from_kafka_error(name, text, target=",".join(self.bootstrap),
                                              topic=self.mapping.topic, group=self.mapping.group_id,
                                              principal=who.principal if who else "",
                                              mechanism=who.mechanism if who else "", user=who.user if who else "",
                                              token_endpoint=who.token_endpoint if who else "")
        if diagnosis is not None:
            self.status.set_problem(diagnosis.at("poll"))
            if diagnosis.problem in (problems.SASL_AUTHENTICATION, problems.TLS_AUTHENTICATION):
                self._on_login_failed()
        if diagnosis is not None or fatal:
            _log.error("mapping %s: %s: %s", self.mapping.uuid, name, text)
        else:
            _log.debug("mapping %s: %s: %s", self.mapping.uuid, name, text)

    def stats(self, raw: str) -> None:
        """librdkafka's ``stats_cb``."""
        if self.connection.stats(raw):
            self.connection_changed()

    def connection_changed(self) -> None:
        """Show (or clear) the connection PROBLEM at once: status readers must not wait for the next refresh."""
        diagnosis = self.connection.diagnosis()
        if diagnosis is not None:
            _log.error("mapping %s: %s", self.mapping.uuid, diagnosis.detail)
        else:
            _log.warning("mapping %s: broker connection restored; polling again", self.mapping.uuid)
        self.status.set_outage(diagnosis)
        self._save_status()
