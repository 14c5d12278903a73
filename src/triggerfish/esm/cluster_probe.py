"""One run of a cluster's connection stages (dns → tcp → tls → sasl → advertised brokers) for the mappings
that set up at the same time against the same cluster with the same client settings.

An engine starting 50 mappings of one cluster ran these stages 50 times at once: 50 AdminClients, each
fetching the cluster's metadata, on the same cores the first invocation waits for, and their freed
buffers stayed in the heap (~0.5 MB per mapping). The first mapping runs them; the ones arriving while
it does wait for its outcome and, when it passed, reuse its results and its admin client for their own
topic and group stages (librdkafka clients are thread-safe). A failure is not shared: each mapping runs
the stages again and reports its own. The client is released with its last user, so an idle engine
keeps none.

    with shared_connect(key, connect) as (results, probe):   # probe is None when a stage failed
        ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from triggerfish.checks import Check
from triggerfish.esm.probes.admin import Probe

#: Runs the connection stages: their results and, when they all passed, the admin client for the next ones.
Connect = Callable[[], tuple[list[Check], Probe | None]]


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.results: list[Check] = []
        self.probe: Probe | None = None


_entries: dict[Hashable, _Entry] = {}
_lock = threading.Lock()


def settings_key(bootstrap: list[str], config: Mapping[str, Any]) -> Hashable:
    """What makes two mappings' connections the same: servers and settings. A callback (an OAuth token
    provider) counts by identity, so mappings with their own callbacks never share."""
    return (tuple(bootstrap),
            tuple(sorted((k, v if isinstance(v, str | int | float | bool) or v is None else id(v))
                         for k, v in config.items())))


@contextmanager
def shared_connect(key: Hashable, connect: Connect) -> Iterator[tuple[list[Check], Probe | None]]:
    """The connection stages' results and admin client, run once for every concurrent user of ``key``."""
    with _lock:
        entry = _entries.setdefault(key, _Entry())
        entry.users += 1
    try:
        with entry.lock:
            if entry.probe is None:
                results, probe = connect()
                if probe is not None:
                    entry.results, entry.probe = results, probe
            else:
                results, probe = entry.results, entry.probe
        yield list(results), probe
    finally:
        with _lock:
            entry.users -= 1
            if entry.users == 0:
                entry.probe = None  # the AdminClient is destroyed with its last reference
                if _entries.get(key) is entry:
                    del _entries[key]
