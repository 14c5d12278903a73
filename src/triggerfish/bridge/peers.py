"""Finding the bridge's replicas: a fixed list of base URLs, or every address of one DNS name.

A Kubernetes headless Service (``clusterIP: None``) resolves to the address of every ready pod behind
it, so ``bridge.replicas.dns`` follows scaling and restarts without configuration. The answer is
kept for a moment: one request that misses its consumer does not pay a DNS lookup per replica.
The list may include this replica itself; asking it is harmless (it answers not-found).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from triggerfish.bridge.replicas_config import ReplicasConfig

_log = logging.getLogger("triggerfish.bridge.replicas")

#: How long a DNS answer is used: short, so a replaced pod's new address is found within seconds.
DNS_TTL_SECONDS = 2.0


class Peers:
    """The base URLs (``http://10.0.0.7:8080``) of every replica, this one possibly included."""

    def __init__(self, config: ReplicasConfig) -> None:
        self._config = config
        self._cached: tuple[float, list[str]] = (-DNS_TTL_SECONDS, [])
        self._failing = False

    async def urls(self) -> list[str]:
        if self._config.dns is None:
            return list(self._config.peers)
        at, urls = self._cached
        if time.monotonic() - at < DNS_TTL_SECONDS:
            return urls
        urls = await self._resolve(self._config.dns)
        self._cached = (time.monotonic(), urls)
        return urls

    async def _resolve(self, name: str) -> list[str]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(name, self._config.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            if not self._failing:  # once per outage, not once per request
                _log.warning("bridge.replicas.dns: cannot resolve %s (%s); consumers of other replicas are not found "
                             "until it resolves", name, exc)
            self._failing = True
            return []
        self._failing = False
        hosts = dict.fromkeys(str(info[4][0]) for info in infos)
        return [f"{self._config.scheme}://{_host(h)}:{self._config.port}" for h in hosts]


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
