"""The fencing function's configuration, read from its environment variables at start-up.

Names match the Keycloak fencing Lambda so a deployment can move over unchanged:

    WEBHOOK_USER, WEBHOOK_USER_SECRET           Basic credentials Alertmanager must send
    INFINISPAN_USER, INFINISPAN_USER_SECRET     Infinispan admin user for the take-offline call
    INFINISPAN_SITE_ENDPOINTS                   JSON {"site": "host[:port]" or "https://host[:port]"}
    SECRETS_REGION                              region of secrets given by name

and add what the original hard-coded or lacked:

    INFINISPAN_CA_FILE          PEM bundle of CAs trusted for Infinispan (default: system CAs)
    INFINISPAN_TIMEOUT          seconds per Infinispan request (default 10)
    DRY_RUN                     true: log the plan, change nothing (default false)
    LOAD_BALANCER               global-accelerator (default) or route53
    GLOBAL_ACCELERATOR_REGION   control-plane region (default us-west-2)
    GLOBAL_ACCELERATOR_ENDPOINT_URL  endpoint override (AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR works too)
    ROUTE53_HOSTED_ZONE_ID      hosted zone of the records (LOAD_BALANCER=route53)
    FENCING_LOCK_FILE           single-flight lock file (default: <tmp>/triggerfish-fencing.lock)

A secret variable holds a secret name (read from Secrets Manager in SECRETS_REGION), a Secrets
Manager ARN, ``env:VAR`` or ``file:///path``. Its content is the password itself or a JSON object
with a ``password`` key (what the console's key/value editor makes). A ``file://`` secret's content
is trimmed of surrounding whitespace first, as Alertmanager trims its ``password_file``.

Variables are read with :class:`triggerfish.settings.Settings`; every problem is a
:class:`~triggerfish.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from triggerfish import secrets
from triggerfish.errors import ConfigError, SecretError
from triggerfish.settings import LENIENT, Settings

_LOAD_BALANCERS = ("global-accelerator", "route53")


@dataclass(frozen=True)
class FencingConfig:
    webhook_user: str
    webhook_user_secret: str
    infinispan_user: str
    infinispan_user_secret: str
    infinispan_endpoints: dict[str, str]  # site -> https://host[:port]
    secrets_region: str | None
    infinispan_ca_file: str | None
    infinispan_timeout: float
    dry_run: bool
    load_balancer: str
    ga_region: str
    ga_endpoint_url: str | None
    route53_zone: str | None
    lock_file: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> FencingConfig:
        env = Settings(os.environ if environ is None else environ)
        why = "the fencing function needs it (see README, Site fencing)"
        webhook_user_secret = env.required("WEBHOOK_USER_SECRET", why)
        infinispan_user_secret = env.required("INFINISPAN_USER_SECRET", why)
        region = env.optional("SECRETS_REGION")
        for name, ref in (("WEBHOOK_USER_SECRET", webhook_user_secret), ("INFINISPAN_USER_SECRET", infinispan_user_secret)):
            if not secrets.is_reference(ref) and region is None:
                raise ConfigError(
                    "SECRETS_REGION",
                    f"is not set but {name} names a secret ({ref!r}); set the secret's region, "
                    "or use a full Secrets Manager ARN, env:VAR or file:///path",
                )
        load_balancer = env.enum_("LOAD_BALANCER", _LOAD_BALANCERS, "global-accelerator")
        route53_zone = env.optional("ROUTE53_HOSTED_ZONE_ID")
        if load_balancer == "route53" and not route53_zone:
            raise ConfigError("ROUTE53_HOSTED_ZONE_ID", "is not set; LOAD_BALANCER=route53 needs the hosted zone id")
        ca_file = env.optional("INFINISPAN_CA_FILE")
        if ca_file and not Path(ca_file).is_file():
            raise ConfigError("INFINISPAN_CA_FILE", f"{ca_file} is not a readable file; give a PEM file of CA certificates")
        return cls(
            webhook_user=env.required("WEBHOOK_USER", why),
            webhook_user_secret=webhook_user_secret,
            infinispan_user=env.required("INFINISPAN_USER", why),
            infinispan_user_secret=infinispan_user_secret,
            infinispan_endpoints=_site_endpoints(env.required("INFINISPAN_SITE_ENDPOINTS", why)),
            secrets_region=region,
            infinispan_ca_file=ca_file,
            infinispan_timeout=env.seconds("INFINISPAN_TIMEOUT", 10.0, 300),
            dry_run=env.bool_("DRY_RUN", False, words=LENIENT),
            load_balancer=load_balancer,
            ga_region=env.optional("GLOBAL_ACCELERATOR_REGION") or "us-west-2",
            ga_endpoint_url=env.optional("GLOBAL_ACCELERATOR_ENDPOINT_URL"),
            route53_zone=route53_zone,
            lock_file=env.optional("FENCING_LOCK_FILE") or str(Path(tempfile.gettempdir()) / "triggerfish-fencing.lock"),
        )


def _site_endpoints(raw: str) -> dict[str, str]:
    name = "INFINISPAN_SITE_ENDPOINTS"
    example = '{"site-a": "infinispan.site-a.example.com", "site-b": "infinispan.site-b.example.com:11222"}'
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigError(name, f"is not valid JSON; expected an object like {example}") from None
    if not isinstance(value, dict) or not value:
        raise ConfigError(name, f"must be a non-empty JSON object of site to host, like {example}")
    endpoints: dict[str, str] = {}
    for site, host in value.items():
        if not isinstance(host, str) or not host.strip():
            raise ConfigError(name, f"site {site!r}: the value must be a host name string, like {example}")
        base = host.strip().rstrip("/")
        if "://" not in base:
            base = "https://" + base
        parts = urlsplit(base)
        if parts.scheme != "https":
            raise ConfigError(name, f"site {site!r}: {parts.scheme}:// is not allowed; Infinispan is called over https only")
        if not parts.hostname or parts.path or parts.query:
            raise ConfigError(name, f"site {site!r}: {host!r} is not host[:port]")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ConfigError(name, f"site {site!r}: {host!r} has an invalid port") from None
        endpoints[str(site)] = base
    return endpoints


class SecretPassword:
    """A password read from a secret at start-up and re-read after ``ttl`` seconds (rotation).

    ``refresh()`` re-reads it at once, at most every ``reread_interval`` seconds: the handler calls it
    when a comparison fails, so a rotated webhook password is accepted on its first use instead of
    after up to ``ttl`` seconds. A failed re-read keeps the last good value: a Secrets Manager hiccup
    must not stop fencing. A password read from a ``file://`` reference is trimmed of leading and
    trailing whitespace, as Alertmanager trims its ``password_file`` (``strings.TrimSpace``).
    """

    def __init__(self, variable: str, ref: str, region: str | None, ttl: float = 300.0,
                 reread_interval: float = 10.0) -> None:
        self._variable = variable
        self._ref = ref
        self._region = region
        self._ttl = ttl
        self._reread_interval = reread_interval
        self._lock = threading.Lock()
        self._value = self._read()
        self._read_at = time.monotonic()
        self._refreshed_at: float | None = None

    def __call__(self) -> str:
        with self._lock:
            if time.monotonic() - self._read_at >= self._ttl:
                self._reread()
            return self._value

    def refresh(self) -> bool:
        """Re-read now unless the last refresh was under ``reread_interval`` ago; True if the value changed."""
        with self._lock:
            now = time.monotonic()
            if self._refreshed_at is not None and now - self._refreshed_at < self._reread_interval:
                return False
            self._refreshed_at = now
            before = self._value
            self._reread()
            return self._value != before

    def __repr__(self) -> str:
        return f"SecretPassword({self._variable}={self._ref!r})"

    def _reread(self) -> None:
        try:
            self._value = self._read()
        except ConfigError:
            pass
        self._read_at = time.monotonic()

    def _read(self) -> str:
        try:
            text = secrets.read_text(self._ref, self._region)
        except SecretError as exc:
            raise ConfigError(self._variable, str(exc)) from None
        if self._ref.startswith("file://"):
            # Alertmanager TrimSpace's its password_file: a file written by `echo` or
            # `kubectl create secret --from-file` ends in a newline that is not part of the password.
            text = text.strip()
        return _password(text)


def _password(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError:
            return text
        password = value.get("password") if isinstance(value, dict) else None
        if isinstance(password, str):
            return password
    return text
