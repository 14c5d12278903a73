"""Provisioned mode's event pollers (ProvisionedPollerConfig): how many partitions run a batch at once.

Lambda's poller is a consumer that delivers one partition's records at a time in order; Lambda keeps between
``MinimumPollers`` and ``MaximumPollers`` of them, caps them at the topic's partition count and the function's
concurrency, and adds pollers as the offset lag grows. In triggerfish a poller is one slot for a partition's
batch in flight: the runner dispatches at most :attr:`Pollers.current` partitions at a time.

    current = clamp(partitions with lag or buffered records, MinimumPollers, min(MaximumPollers, concurrency))

re-evaluated every status refresh (Lambda: every minute), so the slots grow with lag and shrink back to the
minimum once it is gone. Without a ProvisionedPollerConfig (or with ``{}``, Lambda's switch back to on-demand)
there is no limit beyond the function's concurrency, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

_log = logging.getLogger("triggerfish.esm")

#: Lambda's defaults (lambda-kafka-esm.md §5.5): one poller at least, 200 at most.
DEFAULT_MINIMUM, DEFAULT_MAXIMUM = 1, 200


class Pollers:
    """The poller count of one provisioned-mode mapping; ``current`` moves between the bounds with demand."""

    def __init__(self, minimum: int, maximum: int, name: str = "") -> None:
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self.current = self.minimum
        self.name = name

    @classmethod
    def of(cls, config: Mapping[str, Any] | None, concurrency: int, name: str = "") -> Pollers | None:
        """The pollers of a ProvisionedPollerConfig, bounded by the function's concurrency; None when on demand."""
        if not config or ("MinimumPollers" not in config and "MaximumPollers" not in config):
            return None
        maximum = min(int(config.get("MaximumPollers", DEFAULT_MAXIMUM)), max(1, concurrency))
        return cls(int(config.get("MinimumPollers", DEFAULT_MINIMUM)), maximum, name)

    def scale(self, busy: int, partitions: int) -> int:
        """Set ``current`` for ``busy`` partitions with work waiting out of ``partitions`` assigned."""
        ceiling = max(self.minimum, min(self.maximum, partitions))  # never more pollers than partitions
        wanted = max(self.minimum, min(busy, ceiling))
        if wanted != self.current:
            _log.info("mapping %s: %d poller(s) -> %d (%d of %d partition(s) lagging)", self.name, self.current,
                      wanted, busy, partitions)
            self.current = wanted
        return self.current
