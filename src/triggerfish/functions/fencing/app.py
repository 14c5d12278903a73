"""The function-URL handler: a payload-format-2.0 event in, ``{statusCode, headers, body}`` out.

Status codes follow what Alertmanager does with them (it retries 5xx, not 4xx):

    200  done, or nothing to do (resolved alerts, other alert names, an already-fenced reporter)
    400  the body is not an Alertmanager v4 payload          401  no Basic credentials
    403  wrong user or password (nothing else happens)      405  not a POST
    422  a SiteOffline alert without site/reporter/accelerator labels
    424  a dependency refused for good (names, permissions, credentials): fixed by a human
    500  unexpected error          503  a retry can finish the job (also: another call holds the lock)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from triggerfish.errors import (
    FencingBusyError,
    FencingError,
    InvalidRequestError,
    PermanentFencingError,
    TransientFencingError,
)
from triggerfish.functions.fencing import lock
from triggerfish.functions.fencing.decisions import Decisions
from triggerfish.functions.fencing.fencer import Fencer
from triggerfish.functions.fencing.plan import SiteOffline
from triggerfish.functions.fencing.webhook import (
    BasicCredentials,
    basic_credentials,
    credentials_match,
    parse_notification,
    site_offline_alerts,
)

_REALM = 'Basic realm="triggerfish-fencing", charset="UTF-8"'


class _Password(Protocol):
    """The webhook password: its current value, and a rate-limited re-read (``config.SecretPassword``)."""

    def __call__(self) -> str: ...

    def refresh(self) -> bool: ...


class FencingFunction:
    def __init__(self, fencer: Fencer, webhook_user: str, webhook_password: _Password, lock_file: str) -> None:
        self.fencer = fencer
        self._user = webhook_user
        self._password = webhook_password
        self._lock_file = lock_file

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        decisions = Decisions()
        refused = self._refuse(event, decisions)
        if refused is not None:
            return refused
        try:
            notification = parse_notification(_body(event))
        except InvalidRequestError as exc:
            decisions.record("receive", "invalid", reason=str(exc))
            return _response(400, decisions)

        selection = site_offline_alerts(notification)
        _record_unfenced(notification.truncatedAlerts, selection.skipped, selection.invalid, decisions)
        try:
            outcomes = self._fence_all(selection.alerts, decisions)
        except FencingBusyError:
            decisions.record("lock", "busy", reason="another fencing call is running; retry decides from its result")
            return _response(503, decisions, _retry_after())
        status = _status(outcomes, bool(selection.invalid))
        return _response(status, decisions, _retry_after() if status == 503 else None)

    def check_connections(self) -> str | None:
        """The start-up probe of every Infinispan endpoint (address, TLS, credentials): None when all answer,
        else one line naming each failing site, also logged."""
        problems = self.fencer.infinispan.check()
        if not problems:
            return None
        text = "Infinispan is not usable: " + "; ".join(f"{site}: {why}" for site, why in sorted(problems.items()))
        decisions = Decisions()
        decisions.record("check-infinispan", "failed", error=text)
        return text

    def _refuse(self, event: dict[str, Any], decisions: Decisions) -> dict[str, Any] | None:
        """The 405/401/403 response for a request that is not an authenticated POST; None for one that is."""
        method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")).upper()
        if method != "POST":
            decisions.record("receive", "rejected", reason=f"method {method} not allowed")
            return _response(405, decisions, {"allow": "POST"})
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        credentials = basic_credentials(headers.get("authorization"))
        if credentials is None:
            decisions.record("authenticate", "rejected", reason="no valid Basic credentials")
            return _response(401, decisions, {"www-authenticate": _REALM})
        if not credentials_match(credentials, self._user, self._password()) and not self._rotated(credentials):
            decisions.record("authenticate", "rejected", reason="wrong user or password")
            return _response(403, decisions)
        return None

    def _rotated(self, credentials: BasicCredentials) -> bool:
        """After a failed comparison: whether the password was rotated to the one given (a re-read, rate-limited)."""
        return self._password.refresh() and credentials_match(credentials, self._user, self._password())

    def _fence_all(self, alerts: Sequence[SiteOffline], decisions: Decisions) -> list[FencingError | None]:
        """Fence each alert in turn under the single-flight lock (raises FencingBusyError if another call holds it)."""
        if not alerts:
            return []
        with lock.single_flight(self._lock_file):
            return [self._fence_one(offline, decisions) for offline in alerts]

    def _fence_one(self, alert: SiteOffline, decisions: Decisions) -> FencingError | None:
        try:
            return self.fencer.fence(alert, decisions)
        except Exception as exc:  # a bug must not become an unlogged 502; 500 still lets Alertmanager retry
            failure = FencingError(f"unexpected {type(exc).__name__}: {exc}")
            decisions.record("fence", "failed", site=alert.site, reporter=alert.reporter, error=str(failure))
            return failure


class _Labelled(Protocol):
    """What the decision log reads of a skipped alert."""

    @property
    def labels(self) -> Mapping[str, str]: ...


def _record_unfenced(truncated: int, skipped: Sequence[tuple[_Labelled, str]], invalid: Sequence[tuple[_Labelled, str]],
                     decisions: Decisions) -> None:
    """Record what the payload held besides the alerts to fence: alerts left out, skipped and invalid ones."""
    if truncated:
        decisions.record(
            "receive", "truncated", reason=f"Alertmanager left out {truncated} alert(s): "
            "set max_alerts: 0 on the webhook_config",
        )
    for alert, reason in skipped:
        decisions.record(
            "ignore", "ignored", site=alert.labels.get("site"), reporter=alert.labels.get("reporter"),
            alertname=alert.labels.get("alertname"), reason=reason,
        )
    for alert, reason in invalid:
        decisions.record(
            "ignore", "invalid", site=alert.labels.get("site"), reporter=alert.labels.get("reporter"), reason=reason
        )


def _status(outcomes: Sequence[FencingError | None], invalid: bool) -> int:
    """The worst outcome decides: retryable 503, then unexpected 500, then refused-for-good 424, then 422."""
    if any(isinstance(o, TransientFencingError) for o in outcomes):
        return 503
    if any(o is not None and not isinstance(o, PermanentFencingError) for o in outcomes):
        return 500
    if any(isinstance(o, PermanentFencingError) for o in outcomes):
        # 424: Alertmanager records a failed notification (visible in its metrics) and re-sends only at
        # the next group_interval, instead of hammering a dependency that says no
        return 424
    if invalid:
        return 422
    return 200


def _retry_after() -> dict[str, str]:
    return {"retry-after": str(lock.RETRY_AFTER_SECONDS)}


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("body: isBase64Encoded is true but the body is not base64") from None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _response(status: int, decisions: Decisions, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps({"decisions": decisions.records}, default=str),
    }
