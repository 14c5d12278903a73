"""Basic credentials and the Alertmanager v4 payload."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from triggerfish.errors import InvalidRequestError
from triggerfish.functions.fencing.plan import SiteOffline
from triggerfish.functions.fencing.webhook import (
    BasicCredentials,
    basic_credentials,
    credentials_match,
    parse_notification,
    site_offline_alerts,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_basic_credentials_follow_rfc_7617():
    assert basic_credentials(f"Basic {b64('am:pa:ss%41')}") == BasicCredentials("am", "pa:ss%41")  # no unquoting
    assert basic_credentials(f"basic   {b64('am:')}") == BasicCredentials("am", "")
    assert basic_credentials(f"Basic {b64('ünï:cödé')}") == BasicCredentials("ünï", "cödé")
    for bad in (None, "", "Basic", "Basic ", "Bearer x", f"Basic {b64('no-colon')}", "Basic ***", f"Digest {b64('a:b')}"):
        assert basic_credentials(bad) is None


def test_both_user_and_password_must_match():
    assert credentials_match(BasicCredentials("u", "p"), "u", "p")
    assert not credentials_match(BasicCredentials("u", "x"), "u", "p")
    assert not credentials_match(BasicCredentials("x", "p"), "u", "p")
    assert not credentials_match(BasicCredentials("x", "x"), "u", "p")
    assert "p4ss" not in repr(BasicCredentials("u", "p4ss"))


def payload(**extra) -> dict:
    alert = {
        "status": "firing",
        "labels": {"alertname": "SiteOffline", "accelerator": "x.awsglobalaccelerator.com", "site": "b", "reporter": "a"},
        "annotations": {},
        "startsAt": "2026-11-21T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "abc",
        "newAlertField": 1,
    }
    return {"version": "4", "status": "firing", "receiver": "r", "groupKey": "k", "alerts": [alert, copy.deepcopy(alert)], **extra}


def test_unknown_fields_are_ignored_and_duplicates_collapse():
    data = payload(notification_reason="new_alerts", routeLabels={"x": "y"}, somethingFromTheFuture=[1, 2])
    selection = site_offline_alerts(parse_notification(json.dumps(data).encode()))
    assert selection.alerts == [SiteOffline("x.awsglobalaccelerator.com", "b", "a")]


def test_resolved_and_other_alerts_are_skipped_with_a_reason():
    data = payload()
    data["alerts"][0]["status"] = "resolved"
    data["alerts"][1]["labels"]["alertname"] = "Watchdog"
    selection = site_offline_alerts(parse_notification(json.dumps(data).encode()))
    assert selection.alerts == []
    assert [reason for _, reason in selection.skipped] == ["alert is resolved", "alertname is not SiteOffline"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[1", "not JSON"),
        (json.dumps({"status": "firing", "alerts": []}).encode(), "version"),
        (json.dumps(payload(version="3")).encode(), "version"),
        (json.dumps(payload(status="exploding")).encode(), "status"),
        (json.dumps({"version": "4", "status": "firing", "alerts": [{"labels": {}}]}).encode(), "alerts.0.status"),
    ],
)
def test_bad_payloads_name_the_field(body, field):
    with pytest.raises(InvalidRequestError, match=field):
        parse_notification(body)
