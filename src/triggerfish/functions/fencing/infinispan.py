"""Take an Infinispan cross-site backup offline for all caches, through the surviving site's server.

``POST /rest/v2/container/x-site/backups/{site}?action=take-offline`` (Infinispan 15+) answers 200
with a map ``{cache: "ok" | error text}`` even when some caches failed, so success means every
cache said ``ok``. Taking an already-offline backup offline again answers ``ok``: the call is safe to
repeat. TLS is always verified: against ``ca_file`` (a private CA) when given, else against the
system trust store through ``ssl.create_default_context()`` (OpenSSL's default paths, which also
honour ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``) -- not httpx's default, certifi's bundle.

``check()`` is the start-up probe: ``GET /rest/v2/container/x-site/backups/`` on every site proves
the address, the TLS trust and the admin credentials before an alert depends on them.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx

from triggerfish.errors import FencingError, PermanentFencingError, TransientFencingError


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
        # create_default_context() loads the system CAs; httpx's verify=True would load certifi's instead
        self._verify = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
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
        response = self._send("POST", url, {"action": "take-offline"}, self._timeout)
        _raise_for_status(url, response)
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


    def check(self, timeout: float = 5.0) -> dict[str, str]:
        """Probe every site's endpoint (address, TLS, credentials) at once; return ``{site: problem}``, empty when
        all answer. The probes run in parallel so a start-up waits ``timeout`` at most (Lambda's init gets 10 s)."""
        with ThreadPoolExecutor(max_workers=max(1, len(self._endpoints))) as pool:
            found = pool.map(lambda site: (site, self._probe(site, min(timeout, self._timeout))), sorted(self._endpoints))
            return {site: problem for site, problem in found if problem is not None}

    def _probe(self, site: str, timeout: float) -> str | None:
        url = f"{self._endpoints[site]}/rest/v2/container/x-site/backups/"
        try:
            _raise_for_status(url, self._send("GET", url, {}, timeout))
        except FencingError as exc:
            return str(exc)
        return None

    def _send(self, method: str, url: str, params: dict[str, str], timeout: float) -> httpx.Response:
        try:
            with httpx.Client(verify=self._verify, timeout=timeout) as client:
                return client.request(method, url, params=params, auth=(self._user, self._password()))
        except httpx.ConnectError as exc:
            if _certificate_problem(exc):
                raise PermanentFencingError(
                    f"Infinispan at {url}: TLS certificate not trusted; set INFINISPAN_CA_FILE to the CA that signed it"
                ) from None
            raise TransientFencingError(f"Infinispan at {url}: cannot connect ({exc})") from None
        except httpx.TimeoutException:
            raise TransientFencingError(f"Infinispan at {url}: timed out after {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise TransientFencingError(f"Infinispan at {url}: {type(exc).__name__}: {exc}") from None


def _raise_for_status(url: str, response: httpx.Response) -> None:
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


def _certificate_problem(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
