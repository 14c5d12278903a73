"""Whether a mapping's consumer can reach its brokers, from what librdkafka reports while polling.

librdkafka retries a lost broker forever and only says so through its error callback
(``_TRANSPORT`` per connection, ``_ALL_BROKERS_DOWN`` once none is left) and its statistics (each
broker's connection state). A mapping whose brokers are all down polls nothing, and its status must
say so: ``ConnectionWatch`` turns these reports into Lambda's connection ``PROBLEM:`` with the broker,
since when and the client's last error, and notices when a broker connection is up again.

    watch = ConnectionWatch(["b1:9092"])
    watch.error("_ALL_BROKERS_DOWN", "1/1 brokers are down")   -> True (changed: now down)
    watch.diagnosis()                                         -> Diagnosis(CONNECTION_ERROR, ...)
    watch.stats('{"brokers": {"b1:9092/1": {"state": "UP", "source": "learned"}}}')  -> True (up again)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence

from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import problems

#: Errors that mean every broker connection is gone (librdkafka's own verdict).
_ALL_DOWN = ("_ALL_BROKERS_DOWN",)
#: Errors about one connection: kept as the detail of the problem, not a problem by themselves
#: (in a cluster, librdkafka moves on to the other brokers).
_CONNECTION = ("_TRANSPORT", "_TIMED_OUT", "_RESOLVE", "_NO_METADATA", "_DESTROY_BROKER")
#: Statistics snapshots in a row with no broker connection up before the mapping counts as down
#: (for outages librdkafka has not called "all brokers down", e.g. while it is still connecting).
_DOWN_SNAPSHOTS = 3
#: Broker entries of the statistics that are real connections (not the logical group coordinator).
_REAL_SOURCES = ("learned", "configured")
#: While down, how often to ask whether a broker answers, and how long to wait for the answer.
PROBE_S, PROBE_TIMEOUT_S = 1.0, 0.5
#: One real broker UP, as librdkafka writes its fields (name, nodeid, nodename, source, state, ...): while up,
#: a snapshot saying so needs no parsing (every consumer sends one every couple of seconds).
_REAL_UP = re.compile(r'"source":\s*"(?:learned|configured)",\s*"state":\s*"UP"')


class ConnectionWatch:
    """The connection verdict of one consumer; called from its poll thread only."""

    def __init__(self, servers: Sequence[str], *, wall: Callable[[], float] = time.time) -> None:
        self._servers = ",".join(servers)
        self._wall = wall
        self.down_since: float | None = None
        self._last_error = ""
        self._last_broker = ""
        self._dark_snapshots = 0
        self._probed = float("-inf")

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def error(self, name: str, text: str) -> bool:
        """A librdkafka error; True when it changed the verdict or, while down, its detail."""
        if name not in _ALL_DOWN and name not in _CONNECTION:
            return False
        if name in _CONNECTION:
            # "127.0.0.1:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms ...)"
            broker, sep, rest = text.partition(": ")
            if sep and "/" in broker:
                self._last_broker, text = broker.rsplit("/", 1)[0], rest
            error = problems.clean(text)
            changed = self.down and error != self._last_error  # the shown detail follows the latest error
            self._last_error = error
            return changed
        if not self._last_error:
            self._last_error = problems.clean(text)
        return self._went_down()

    def stats(self, raw: str) -> bool:
        """A librdkafka statistics snapshot (JSON); True when the verdict changed (down or up again)."""
        if self.down_since is None and _REAL_UP.search(raw):
            self._dark_snapshots = 0
            return False
        try:
            brokers = json.loads(raw).get("brokers") or {}
        except (ValueError, AttributeError):
            return False
        real = [b for b in brokers.values() if isinstance(b, dict) and b.get("source") in _REAL_SOURCES]
        if not real:
            return False
        if any(b.get("state") == "UP" for b in real):
            return self.restored()
        self._dark_snapshots += 1
        if self._dark_snapshots >= _DOWN_SNAPSHOTS:
            if not self._last_error:
                states = ", ".join(sorted({f"{b.get('nodename') or b.get('name')} {b.get('state')}" for b in real}))
                self._last_error = f"no broker connection up ({states})"
            return self._went_down()
        return False

    def restored(self) -> bool:
        """A broker connection is up (a snapshot said so, or a broker answered); True when that ends an outage."""
        self._dark_snapshots = 0
        if self.down_since is None:
            return False
        self.down_since = None
        self._last_error = ""
        return True

    def probe(self, reachable: Callable[[float], bool], now: float) -> bool:
        """While down, at most every ``PROBE_S`` (monotonic ``now``): whether a broker answers within
        ``PROBE_TIMEOUT_S``; True when that ended the outage. Statistics come seldom (they cost an idle
        consumer more than anything else it does): this is what clears a PROBLEM within ~2 s of a broker
        being back."""
        if self.down_since is None or now - self._probed < PROBE_S:
            return False
        self._probed = now
        return reachable(PROBE_TIMEOUT_S) and self.restored()

    def _went_down(self) -> bool:
        if self.down_since is not None:
            return False
        self.down_since = self._wall()
        return True

    def diagnosis(self) -> Diagnosis | None:
        """Lambda's connection PROBLEM with which broker, since when and the client's error; None while up."""
        if self.down_since is None:
            return None
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.down_since))
        broker = self._last_broker or self._servers
        return Diagnosis(
            problems.CONNECTION_ERROR,
            f"no broker of {self._servers} reachable since {since}; last error from {broker}: "
            f"{self._last_error or 'all brokers are down'}",
            f"check that the brokers ({self._servers}) are running and reachable from this machine "
            "(`triggerfish doctor kafka`); polling resumes by itself when they are",
            "_ALL_BROKERS_DOWN",
            stage="poll",
            target=broker,
        )

