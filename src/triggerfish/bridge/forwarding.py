"""Consumers through any replica: a request for a consumer instance this replica does not hold goes to the one that does.

Strimzi (its issue #125) and Confluent's REST proxy keep a consumer instance in the process that
created it, so behind a load-balanced Service every request after the create must reach that same
process. Here a replica that misses the instance finds its owner and forwards the request:

* **locate**: ask every replica (:mod:`.peers`) at once for the instance's subscription, a read with no
  effect; the one answering 200 owns it. The answer is remembered, so later requests go straight there.
* **forward**: send the client's request (method, path, query, body, ``Authorization``) to the owner with
  httpx and answer with the owner's status, headers and body.

A forwarded request carries ``X-Triggerfish-Forwarded`` and is never forwarded again, so no request
can loop. A replica that cannot be connected to within ``bridge.replicas.connect.timeout.ms`` owns
nothing any more (its consumers died with it): the request gets Strimzi's consumer-not-found 404.
An owner that accepts the request but does not answer in time gives a 503, never a hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections import OrderedDict
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import Response

from triggerfish.bridge.consumers import Registry
from triggerfish.bridge.peers import Peers
from triggerfish.bridge.replicas_config import ReplicasConfig
from triggerfish.errors import ConsumerNotFound, UnavailableError

_log = logging.getLogger("triggerfish.bridge.replicas")

#: Marks a request one replica sent another; its value names the sender (for logs and tests).
FORWARDED = "x-triggerfish-forwarded"

# never sent on: they describe one connection or are recomputed (content-length, host); CORS (origin)
# is answered by the replica the browser called
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "transfer-encoding", "upgrade", "host", "content-length", "origin", FORWARDED})
# httpx has decoded any content-encoding already
_DROPPED_ANSWER = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
                             "date", "server"})
_MISSING = str(ConsumerNotFound("", ""))
#: Owners remembered at most; a forgotten one is located again.
_REMEMBERED = 10_000


class Forwarder:
    """Locates consumer instances on the other replicas and forwards their requests; one per bridge."""

    def __init__(self, config: ReplicasConfig, peers: Peers | None = None) -> None:
        self.config = config
        self.replica_id = uuid.uuid4().hex[:12]
        self._peers = peers or Peers(config)
        self._owners: OrderedDict[tuple[str, str], str] = OrderedDict()
        verify: ssl.SSLContext | bool = True
        if config.ca_location is not None:
            verify = ssl.create_default_context(cafile=config.ca_location)
        # no pool limit: forwarded long polls each hold a connection for their whole timeout
        self._http = httpx.AsyncClient(verify=verify, follow_redirects=False, trust_env=False,
                                       limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def answer(self, request: Request, registry: Registry) -> Response | None:
        """The owner's answer to a request for a consumer instance held elsewhere; ``None`` to answer here.

        ``None`` when the request was itself forwarded, when this replica holds the instance, and when
        no replica does (the local handler then gives Strimzi's 404).
        """
        if FORWARDED in request.headers:
            return None
        group, name = request.path_params["groupid"], request.path_params["name"]
        if registry.holds(group, name):
            return None
        key = (group, name)
        owner = self._owners.get(key)
        if owner is not None:
            answer = await self._forward(owner, request, key)
            if answer is not None:
                return answer
        # first request here, or the remembered owner lost it (deleted, expired, restarted): ask everyone
        owner = await self.locate(request, group, name)
        if owner is None:
            return None
        return await self._forward(owner, request, key)

    async def held_elsewhere(self, request: Request, group: str, name: str) -> bool:
        """Whether a replica already holds ``group``/``name``: creating it again is Strimzi's 409, as on one bridge."""
        return FORWARDED not in request.headers and await self.locate(request, group, name) is not None

    async def locate(self, request: Request, group: str, name: str) -> str | None:
        """The base URL of the replica holding ``group``/``name``, asked with the client's credentials."""
        path = f"/consumers/{quote(group, safe='')}/instances/{quote(name, safe='')}/subscription"
        headers = {FORWARDED: self.replica_id}
        if "authorization" in request.headers:
            headers["authorization"] = request.headers["authorization"]
        timeout = httpx.Timeout(self.config.locate_seconds, connect=self.config.connect_seconds)

        async def ask(peer: str) -> str | None:
            try:
                answer = await self._http.get(peer + path, headers=headers, timeout=timeout)
            except httpx.HTTPError:
                return None  # down, or too slow to be of use: not the owner anyone can reach
            return peer if answer.status_code == 200 else None

        asks = [asyncio.ensure_future(ask(peer)) for peer in await self._peers.urls()]
        try:
            for done in asyncio.as_completed(asks):
                owner = await done
                if owner is not None:
                    self._remember((group, name), owner)
                    return owner
            return None
        finally:
            for pending in asks:
                pending.cancel()

    async def _forward(self, owner: str, request: Request, key: tuple[str, str]) -> Response | None:
        """The owner's answer; ``None`` (and forgotten) when it no longer holds the instance or cannot be reached."""
        path = request.scope.get("raw_path") or request.url.path.encode()
        url = owner + path.decode("latin-1")
        if request.url.query:
            url += "?" + request.url.query
        headers = [(k, v) for k, v in request.headers.items() if k not in _HOP]
        headers.append((FORWARDED, self.replica_id))
        timeout = httpx.Timeout(self.config.request_seconds + _poll_seconds(request), connect=self.config.connect_seconds)
        try:
            answer = await self._http.request(request.method, url, content=await request.body(), headers=headers,
                                              timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            # gone (refused, unreachable, or died mid-answer): so are its consumers
            _log.info("replica %s holding consumer %s/%s is unreachable (%s)", owner, *key, type(exc).__name__)
            self._owners.pop(key, None)
            return None
        except httpx.HTTPError as exc:
            raise UnavailableError(f"The replica holding consumer instance {key[0]}/{key[1]} ({owner}) did not answer "
                                   f"in time ({type(exc).__name__}); retry, or raise bridge.replicas.request.timeout.ms"
                                   ) from None
        if _missing(answer):
            self._owners.pop(key, None)
            return None
        if request.method == "DELETE" and len(path.strip(b"/").split(b"/")) == 4:  # the instance itself, gone
            self._owners.pop(key, None)
        else:
            self._remember(key, owner)
        headers_out = {k: v for k, v in answer.headers.items() if k not in _DROPPED_ANSWER}
        return Response(answer.content, status_code=answer.status_code, headers=headers_out)

    def _remember(self, key: tuple[str, str], owner: str) -> None:
        self._owners[key] = owner
        self._owners.move_to_end(key)
        while len(self._owners) > _REMEMBERED:
            self._owners.popitem(last=False)


def _missing(answer: httpx.Response) -> bool:
    """Whether the answer is Strimzi's consumer-not-found (not some other 404, such as an unassigned partition)."""
    if answer.status_code != 404:
        return False
    try:
        body = json.loads(answer.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("message") == _MISSING


def _poll_seconds(request: Request) -> float:
    """A poll's own ``timeout`` (ms), which the owner may spend before answering."""
    raw = request.query_params.get("timeout")
    try:
        return max(0, int(raw or 0)) / 1000
    except ValueError:
        return 0.0
