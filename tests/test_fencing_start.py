"""The fencing function's start: a malformed variable fails ``triggerfish run`` with one line before
anything is served; an Infinispan that cannot be used (TLS, credentials, address) lets the start
finish but keeps ``GET /ready`` at 503 with the reason, and says so in the log."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from test_fencing_url import fencing_function
from triggerfish.app import App
from triggerfish.errors import ConfigError

pytestmark = pytest.mark.timeout(120)


def _fencing_config(tmp_path: Path, endpoints: dict[str, str]) -> Path:
    (tmp_path / "webhook-pw").write_text("pw\n")
    (tmp_path / "ispn-pw").write_text("pw\n")
    variables = {
        "WEBHOOK_USER": "alertmanager", "WEBHOOK_USER_SECRET": f"file://{tmp_path / 'webhook-pw'}",
        "INFINISPAN_USER": "admin", "INFINISPAN_USER_SECRET": f"file://{tmp_path / 'ispn-pw'}",
        "INFINISPAN_SITE_ENDPOINTS": json.dumps(endpoints), "FENCING_LOCK_FILE": str(tmp_path / "fencing.lock"),
    }
    config = {"Functions": [{"FunctionName": "site-fencing", "Handler": "triggerfish.functions.fencing.handler",
                             "Environment": {"Variables": variables}, "FunctionUrlConfig": {"AuthType": "NONE"},
                             "ReservedConcurrentExecutions": 1}],
              "StateFile": str(tmp_path / "state.db")}
    path = tmp_path / "triggerfish.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_malformed_variable_fails_the_start_of_triggerfish_run_with_one_line(tmp_path: Path):
    config = _fencing_config(tmp_path, {"site-a": "http://infinispan-a:11222", "site-b": "infinispan-b:11222"})
    done = subprocess.run([sys.executable, "-m", "triggerfish", "run", "--config", str(config), "--port", "0"],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path, env={**os.environ, "COLUMNS": "1000"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: function site-fencing: its handler triggerfish.functions.fencing.handler failed to start: ConfigError: "
        "INFINISPAN_SITE_ENDPOINTS: site 'site-a': http:// is not allowed; Infinispan is called over https only"
    ], done.stderr
    assert "control API on" not in done.stderr  # nothing was served


def test_app_start_fails_on_a_function_that_cannot_start(make_world, tmp_path: Path):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    env = {k: v for k, v in world.env.items() if k != "WEBHOOK_USER"}
    app = App([fencing_function(env)], state=tmp_path / "state.db", port=0)
    with pytest.raises(ConfigError) as raised:
        app.start()
    assert str(raised.value).startswith("function site-fencing: ")
    assert "WEBHOOK_USER: is not set" in str(raised.value)
    assert app.url is None  # the control API was never served


def _ready(env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> tuple[int, dict]:
    caplog.set_level(logging.WARNING, logger="triggerfish")
    with App([fencing_function(env)], state=tmp_path / "state.db", port=0) as app:
        response = httpx.get(f"{app.url}/ready", timeout=30)
    return response.status_code, response.json()


def test_a_good_configuration_is_ready(make_world, tmp_path: Path, caplog):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    status, body = _ready(world.env, tmp_path, caplog)
    assert (status, body["ready"]) == (200, True) and "functionsNotReady" not in body


def test_an_untrusted_infinispan_certificate_starts_but_is_not_ready(make_world, tmp_path: Path, caplog):
    # The seed's Lambda skipped TLS verification: a private CA missing from INFINISPAN_CA_FILE shows at start.
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    env = {k: v for k, v in world.env.items() if k != "INFINISPAN_CA_FILE"}
    status, body = _ready(env, tmp_path, caplog)
    assert status == 503 and body["ready"] is False
    reason = body["functionsNotReady"]["site-fencing"]
    assert reason.startswith("Infinispan is not usable: site-a: Infinispan at https://")
    assert "TLS certificate not trusted; set INFINISPAN_CA_FILE" in reason
    assert any(f"function site-fencing is not ready: {reason}" == r.getMessage() for r in caplog.records)


def test_wrong_infinispan_credentials_or_address_start_but_are_not_ready(make_world, tmp_path: Path, caplog):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    (tmp_path / "wrong").write_text("wrong-password")
    endpoints = json.loads(world.env["INFINISPAN_SITE_ENDPOINTS"])
    endpoints["site-c"] = "127.0.0.1:1"  # nothing listens there
    env = {**world.env, "INFINISPAN_USER_SECRET": f"file://{tmp_path / 'wrong'}",
           "INFINISPAN_SITE_ENDPOINTS": json.dumps(endpoints)}
    status, body = _ready(env, tmp_path, caplog)
    reason = body["functionsNotReady"]["site-fencing"]
    assert status == 503
    assert "site-a: Infinispan at" in reason and "answered 401: check INFINISPAN_USER and INFINISPAN_USER_SECRET" in reason
    assert "site-c: Infinispan at https://127.0.0.1:1/rest/v2/container/x-site/backups/: cannot connect" in reason
    assert "wrong-password" not in reason
