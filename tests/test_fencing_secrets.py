"""The webhook password as Alertmanager sends it: trimmed like its ``password_file``, and a rotated
password accepted at once. Real HTTP through triggerfish's function URL to a worker process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fencing_support import WEBHOOK_USER, notification
from fencing_support import alert as site_offline
from test_fencing_url import fencing_function
from triggerfish.functions.fencing.config import SecretPassword
from triggerfish.functions.runtime import FunctionRuntime

api = pytest.importorskip("triggerfish.api")

pytestmark = pytest.mark.timeout(90)

# A resolved alert: authentication runs in full, nothing is fenced.
_BODY = json.dumps(notification(site_offline("site-b", "site-a", status="resolved"), status="resolved")).encode()


@contextmanager
def function_url(env: dict[str, str]) -> Iterator[tuple[httpx.Client, str]]:
    runtime = FunctionRuntime([fencing_function(env)])
    server = api.ApiServer(api.create_app(api.EngineBackend(runtime)), port=0)
    base = server.start()
    try:
        with httpx.Client(timeout=60) as client:
            yield client, f"{base}/lambda-url/site-fencing/"
    finally:
        server.stop()
        runtime.close()


def post(client: httpx.Client, url: str, password: str) -> int:
    return client.post(url, content=_BODY, headers={"content-type": "application/json"}, auth=(WEBHOOK_USER, password)).status_code


def test_a_password_file_ending_in_a_newline_is_trimmed_like_alertmanagers_password_file(make_world, tmp_path: Path):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    secret = tmp_path / "webhook-password"
    secret.write_text("  s3cret-pw\n")  # `echo s3cret-pw > file`, kubectl --from-file: the newline is not the password
    with function_url({**world.env, "WEBHOOK_USER_SECRET": f"file://{secret}"}) as (client, url):
        assert post(client, url, "s3cret-pw") == 200
        assert post(client, url, "  s3cret-pw\n") == 403


def test_a_rotated_webhook_password_is_accepted_on_its_first_use(make_world, tmp_path: Path):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    secret = tmp_path / "webhook-password"
    secret.write_text("old-password\n")
    with function_url({**world.env, "WEBHOOK_USER_SECRET": f"file://{secret}"}) as (client, url):
        assert post(client, url, "old-password") == 200
        secret.write_text("new-password\n")  # rotated, well within the 300 s re-read period
        assert post(client, url, "new-password") == 200
        assert post(client, url, "old-password") == 403


def test_the_re_read_on_a_refused_password_is_rate_limited(tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("one")
    password = SecretPassword("WEBHOOK_USER_SECRET", f"file://{secret}", None, reread_interval=3600)
    secret.write_text("two")
    assert password.refresh() and password() == "two"
    secret.write_text("three")
    assert not password.refresh() and password() == "two"  # a flood of wrong passwords reads the secret once
    json_secret = tmp_path / "kv"
    json_secret.write_text('{"password": " spaced "}\n')  # a JSON value is taken as written
    assert SecretPassword("WEBHOOK_USER_SECRET", f"file://{json_secret}", None)() == " spaced "
