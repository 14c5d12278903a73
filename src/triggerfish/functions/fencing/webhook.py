"""The Alertmanager side: HTTP Basic credentials and the webhook (version 4) payload.

Credentials follow RFC 7617: base64 of ``user:password``, split at the first colon, no
percent-decoding. Both user and password are compared in constant time and both must match.
The payload is read with :mod:`triggerfish.settings`' typed readers and ignores fields it does not
know, because Alertmanager keeps adding some (``notification_reason`` in 0.32, ``routeLabels`` in 0.34).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass, field

from triggerfish.errors import ConfigError, InvalidRequestError
from triggerfish.functions.fencing.plan import SiteOffline
from triggerfish.json_input import NestingError, loads
from triggerfish.settings import read_enum, read_int, read_list, read_map, read_str, read_str_map

_ALERT_NAME = "SiteOffline"


@dataclass(frozen=True)
class BasicCredentials:
    user: str
    password: str

    def __repr__(self) -> str:  # keep the password out of any accidental log line
        return f"BasicCredentials(user={self.user!r}, password=***)"


def basic_credentials(authorization: str | None) -> BasicCredentials | None:
    """Credentials from an ``Authorization`` header value; ``None`` if absent or not valid Basic."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    return BasicCredentials(user, password)


def credentials_match(given: BasicCredentials, user: str, password: str) -> bool:
    # Evaluate both comparisons, always: an early exit would tell an attacker which half was right.
    user_ok = hmac.compare_digest(given.user.encode(), user.encode())
    password_ok = hmac.compare_digest(given.password.encode(), password.encode())
    return user_ok & password_ok


_STATUSES = ("firing", "resolved")


@dataclass(frozen=True)
class _Alert:
    status: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class _Notification:
    version: str
    status: str
    alerts: list[_Alert]
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    groupLabels: dict[str, str] = field(default_factory=dict)
    commonLabels: dict[str, str] = field(default_factory=dict)


def parse_notification(body: bytes) -> _Notification:
    try:
        data = loads(body)
    except NestingError as exc:
        raise InvalidRequestError(f"body is not an Alertmanager webhook payload: {exc}") from None
    except ValueError:
        raise InvalidRequestError("body is not JSON; expected an Alertmanager webhook (version 4) payload") from None
    try:
        return _notification(data)
    except ConfigError as exc:
        raise InvalidRequestError(f"{exc} (expected an Alertmanager webhook version 4 payload)") from None


def _notification(data: object) -> _Notification:
    body = read_map("body", data)
    version = read_enum("version", body.get("version"), ["4"])
    return _Notification(
        version=version,
        status=read_enum("status", body.get("status"), _STATUSES),
        alerts=[_alert(f"alerts.{i}", a) for i, a in enumerate(read_list("alerts", body.get("alerts")))],
        receiver=_optional_str(body, "receiver", ""),
        groupKey=_optional_str(body, "groupKey", ""),
        truncatedAlerts=read_int("truncatedAlerts", body.get("truncatedAlerts", 0), 0, 2**31),
        groupLabels=read_str_map("groupLabels", body.get("groupLabels", {})),
        commonLabels=read_str_map("commonLabels", body.get("commonLabels", {})),
    )


def _alert(where: str, data: object) -> _Alert:
    # Unknown fields are ignored: Alertmanager keeps adding some.
    alert = read_map(where, data)
    return _Alert(
        status=read_enum(f"{where}.status", alert.get("status"), _STATUSES),
        labels=read_str_map(f"{where}.labels", alert.get("labels", {})),
        annotations=read_str_map(f"{where}.annotations", alert.get("annotations", {})),
        startsAt=_optional_str(alert, "startsAt", "", where),
        endsAt=_optional_str(alert, "endsAt", "", where),
        fingerprint=_optional_str(alert, "fingerprint", "", where),
    )


def _optional_str(data: dict[str, object], name: str, default: str, where: str = "") -> str:
    return read_str(f"{where}.{name}" if where else name, data.get(name, default), required=False)


@dataclass(frozen=True)
class _Selection:
    """What a notification asks of fencing: the firing SiteOffline alerts, and why others were skipped."""

    alerts: list[SiteOffline]
    skipped: list[tuple[_Alert, str]]
    invalid: list[tuple[_Alert, str]]


def site_offline_alerts(notification: _Notification) -> _Selection:
    """Firing ``SiteOffline`` alerts, each checked on its own status (a firing group can carry resolved alerts)."""
    alerts: list[SiteOffline] = []
    skipped: list[tuple[_Alert, str]] = []
    invalid: list[tuple[_Alert, str]] = []
    seen: set[SiteOffline] = set()
    for alert in notification.alerts:
        if alert.labels.get("alertname") != _ALERT_NAME:
            skipped.append((alert, f"alertname is not {_ALERT_NAME}"))
            continue
        if alert.status != "firing":
            skipped.append((alert, f"alert is {alert.status}"))
            continue
        missing = [k for k in ("accelerator", "site", "reporter") if not alert.labels.get(k)]
        if missing:
            invalid.append((alert, f"SiteOffline alert lacks the label(s) {', '.join(missing)}"))
            continue
        wanted = SiteOffline(alert.labels["accelerator"], alert.labels["site"], alert.labels["reporter"])
        if wanted not in seen:  # HA Prometheus pairs send the same alert twice in one group
            seen.add(wanted)
            alerts.append(wanted)
    return _Selection(alerts, skipped, invalid)
