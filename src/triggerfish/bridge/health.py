"""What the Kafka clients report about the cluster connection, for fast 503s and an honest ``/ready``.

librdkafka reports authentication failures through ``error_cb`` and keeps retrying; a request would
otherwise wait for its metadata timeout and then blame the network. Failures seen in the last
``window`` seconds answer requests at once with the real cause.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError

from triggerfish.bridge.errors import Identity, credentials_rejected

_log = logging.getLogger("triggerfish.bridge.kafka")

_CREDENTIALS = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL}


class KafkaHealth:
    def __init__(self, identity: Identity, window: float = 15.0) -> None:
        self._identity = identity
        self._window = window
        self._rejected: tuple[float, str] | None = None

    def on_error(self, err: KafkaError) -> None:
        """``error_cb`` for every client (runs on librdkafka's or the poll thread)."""
        if err.code() in _CREDENTIALS:
            self._rejected = (time.monotonic(), err.str())
        _log.debug("kafka error: %s", err.str())  # librdkafka logs it too, through the same logger tree

    def rejected(self) -> str | None:
        r = self._rejected
        if r is not None and time.monotonic() - r[0] < self._window:
            return r[1]
        return None

    def check(self) -> None:
        """Raise the 503 that names the real cause when Kafka refuses the bridge's credentials."""
        reason = self.rejected()
        if reason is not None:
            raise credentials_rejected(self._identity, reason)
