"""Take an Infinispan cross-site backup offline for all caches, through the surviving site's server.

``POST /rest/v2/container/x-site/backups/{site}?action=take-offline`` (Infinispan 15+) answers 200
with a map ``{cache: "ok" | error text}`` even when some caches failed, so success means every
cache said ``ok``. Taking an already-offline backup offline again answers ``ok``: the call is safe to
repeat. TLS is always verified; ``ca_file`` adds a private CA.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from urllib.parse import quote

import httpx

from triggerfish.errors import PermanentFencingError, TransientFencingError


class Infinispan:
    def __init__(
        self,
        endpoints: Mapping[str, str],
        user: str,
        password: Callable[[], str],
        ca_file: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._user = user
        self._password = password
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._timeout = timeout

    def knows(self, site: str) -> bool:
        return site in self._endpoints

    def url(self, via_site: str, backup_site: str) -> str:
        return f"{self._endpoints[via_site]}/rest/v2/container/x-site/backups/{quote(backup_site, safe='')}"

    def take_offline(self, via_site: str, backup_site: str) -> dict[str, str]:
        """Take ``backup_site`` offline on ``via_site``'s cluster; return the per-cache map."""
        if via_site not in self._endpoints:
            raise PermanentFencingError(f"INFINISPAN_SITE_ENDPOINTS has no entry for site {via_site!r}")
        url = self.url(via_site, backup_site)
        try:
            with httpx.Client(verify=self._verify, timeout=self._timeout) as client:
                response = client.post(url, params={"action": "take-offline"}, auth=(self._user, self._password()))
        except httpx.ConnectError as exc:
            if _certificate_problem(exc):
                raise PermanentFencingError(
                    f"Infinispan at {url}: TLS certificate not trusted; set INFINISPAN_CA_FILE to the CA that signed it"
                ) from None
            raise TransientFencingError(f"Infinispan at {url}: cannot connect ({exc})") from None
        except httpx.TimeoutException:
            raise TransientFencingError(f"Infinispan at {url}: timed out after {self._timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise TransientFencingError(f"Infinispan at {url}: {type(exc).__name__}: {exc}") from None

        if response.status_code in (401, 403):
            raise PermanentFencingError(
                f"Infinispan at {url} answered {response.status_code}: check INFINISPAN_USER and "
                "INFINISPAN_USER_SECRET (the user needs the ADMIN permission)"
            )
        if response.status_code == 404:
            raise PermanentFencingError(f"Infinispan at {url} answered 404: the container x-site API needs Infinispan 15 or later")
        if response.status_code >= 500:
            raise TransientFencingError(f"Infinispan at {url} answered {response.status_code}")
        if response.status_code != 200:
            raise PermanentFencingError(f"Infinispan at {url} answered {response.status_code}")
        try:
            caches = response.json()
        except ValueError:
            raise TransientFencingError(f"Infinispan at {url} answered 200 without a JSON body") from None
        if not isinstance(caches, dict):
            raise TransientFencingError(f"Infinispan at {url} answered 200 with {type(caches).__name__}, expected a JSON object")
        failed = {str(k): str(v) for k, v in caches.items() if v != "ok"}
        if failed:
            listed = "; ".join(f"{cache}: {text}" for cache, text in sorted(failed.items()))
            raise TransientFencingError(f"Infinispan at {url}: {len(failed)} of {len(caches)} cache(s) not offline ({listed})")
        return {str(k): str(v) for k, v in caches.items()}


def _certificate_problem(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
