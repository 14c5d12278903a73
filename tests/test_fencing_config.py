"""Start-up configuration: every missing or malformed variable is named before any alert arrives."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys

import pytest

from fencing_support import ISPN_PASSWORD, WEBHOOK_PASSWORD
from triggerfish.errors import ConfigError
from triggerfish.functions.fencing import load_handler
from triggerfish.functions.fencing.config import FencingConfig, SecretPassword

BASE = {
    "WEBHOOK_USER": "alertmanager",
    "WEBHOOK_USER_SECRET": "env:HOOK_PW",
    "INFINISPAN_USER": "admin",
    "INFINISPAN_USER_SECRET": "env:ISPN_PW",
    "INFINISPAN_SITE_ENDPOINTS": '{"site-a": "ispn.a.example.com", "site-b": "https://ispn.b.example.com:11222/"}',
}


def config(**changes: str | None) -> FencingConfig:
    env = {**BASE, **changes}
    return FencingConfig.from_environ({k: v for k, v in env.items() if v is not None})


def test_defaults_and_endpoint_normalisation():
    c = config()
    assert c.infinispan_endpoints == {"site-a": "https://ispn.a.example.com", "site-b": "https://ispn.b.example.com:11222"}
    assert (c.dry_run, c.load_balancer, c.ga_region, c.infinispan_ca_file) == (False, "global-accelerator", "us-west-2", None)
    assert config(DRY_RUN="TRUE").dry_run is True


@pytest.mark.parametrize("name", ["WEBHOOK_USER", "WEBHOOK_USER_SECRET", "INFINISPAN_USER", "INFINISPAN_USER_SECRET", "INFINISPAN_SITE_ENDPOINTS"])
def test_missing_required_variable_is_named(name):
    with pytest.raises(ConfigError) as raised:
        config(**{name: None})
    assert raised.value.field == name and "is not set" in str(raised.value)


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"INFINISPAN_SITE_ENDPOINTS": "{site-a: x}"}, "INFINISPAN_SITE_ENDPOINTS", "not valid JSON"),
        ({"INFINISPAN_SITE_ENDPOINTS": '["x"]'}, "INFINISPAN_SITE_ENDPOINTS", "JSON object"),
        ({"INFINISPAN_SITE_ENDPOINTS": '{"a": 1}'}, "INFINISPAN_SITE_ENDPOINTS", "site 'a'"),
        ({"INFINISPAN_SITE_ENDPOINTS": '{"a": "http://x"}'}, "INFINISPAN_SITE_ENDPOINTS", "https only"),
        ({"INFINISPAN_SITE_ENDPOINTS": '{"a": "x:port"}'}, "INFINISPAN_SITE_ENDPOINTS", "invalid port"),
        ({"INFINISPAN_SITE_ENDPOINTS": '{"a": "x/rest"}'}, "INFINISPAN_SITE_ENDPOINTS", "host\\[:port\\]"),
        ({"DRY_RUN": "maybe"}, "DRY_RUN", "true or false"),
        ({"INFINISPAN_TIMEOUT": "soon"}, "INFINISPAN_TIMEOUT", "seconds"),
        ({"LOAD_BALANCER": "haproxy"}, "LOAD_BALANCER", "route53"),
        ({"LOAD_BALANCER": "route53"}, "ROUTE53_HOSTED_ZONE_ID", "hosted zone"),
        ({"INFINISPAN_CA_FILE": "/nonexistent/ca.pem"}, "INFINISPAN_CA_FILE", "PEM"),
        ({"WEBHOOK_USER_SECRET": "webhook-password"}, "SECRETS_REGION", "WEBHOOK_USER_SECRET"),
    ],
)
def test_malformed_variable_is_named_with_the_fix(changes, field, text):
    with pytest.raises(ConfigError, match=text) as raised:
        config(**changes)
    assert raised.value.field == field


def test_secrets_from_secrets_manager_by_name_and_arn(aws):
    # By name in SECRETS_REGION (the original Lambda's form) and by ARN with a key/value JSON body.
    assert SecretPassword("WEBHOOK_USER_SECRET", aws.webhook_secret_name, "eu-west-1")() == WEBHOOK_PASSWORD
    assert SecretPassword("INFINISPAN_USER_SECRET", aws.ispn_secret_arn, None)() == ISPN_PASSWORD


def test_unreadable_secret_fails_start_up_naming_the_variable(aws, monkeypatch):
    monkeypatch.setenv("HOOK_PW", "x")
    env = {**BASE, "INFINISPAN_USER_SECRET": "no-such-secret", "SECRETS_REGION": "eu-west-1"}
    with pytest.raises(ConfigError) as raised:
        load_handler(env)
    assert raised.value.field == "INFINISPAN_USER_SECRET" and "ResourceNotFoundException" in str(raised.value)


def test_secret_from_file_and_env(tmp_path, monkeypatch):
    path = tmp_path / "hook.json"
    path.write_text(json.dumps({"username": "alertmanager", "password": "from-file"}))
    assert SecretPassword("WEBHOOK_USER_SECRET", f"file://{path}", None)() == "from-file"
    monkeypatch.setenv("PLAIN", "s3cret")
    assert SecretPassword("WEBHOOK_USER_SECRET", "env:PLAIN", None)() == "s3cret"
    with pytest.raises(ConfigError, match="WEBHOOK_USER_SECRET: secret env:MISSING_VAR_X"):
        SecretPassword("WEBHOOK_USER_SECRET", "env:MISSING_VAR_X", None)


def test_module_handler_is_built_at_lookup_and_reports_config_by_name(monkeypatch, tmp_path):
    for name in list(BASE) + ["HOOK_PW", "ISPN_PW"]:
        monkeypatch.delenv(name, raising=False)
    sys.modules.pop("triggerfish.functions.fencing", None)
    module = importlib.import_module("triggerfish.functions.fencing")  # importing reads nothing
    with pytest.raises(ConfigError, match="^WEBHOOK_USER_SECRET: is not set"):
        module.handler  # noqa: B018 - the runtime's lookup at start-up

    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOOK_PW", "pw")
    monkeypatch.setenv("ISPN_PW", "pw2")
    monkeypatch.setenv("FENCING_LOCK_FILE", str(tmp_path / "lock"))
    handler = module.handler
    assert callable(handler) and module.handler is handler
    response = handler({"requestContext": {"http": {"method": "POST"}}, "headers": {}, "body": "{}"}, None)
    assert response["statusCode"] == 401


def test_readme_example_is_a_valid_function_and_configuration(tmp_path):
    from pathlib import Path

    import yaml

    from triggerfish.config import load

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Site fencing") :]
    block = section[section.index("```yaml") + len("```yaml") : section.index("```", section.index("```yaml") + 7)]
    path = tmp_path / "fencing.yaml"
    path.write_text(block)
    function = load(path).functions["site-fencing"]
    assert function.handler == "triggerfish.functions.fencing.handler"
    assert function.reserved_concurrent_executions == 1
    assert function.function_url_config == {"AuthType": "NONE"}
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("")
    variables = {**function.environment, "INFINISPAN_CA_FILE": str(ca_file)}
    parsed = FencingConfig.from_environ(variables)
    assert set(parsed.infinispan_endpoints) == {"site-a", "site-b"} and parsed.dry_run is False
    receiver = yaml.safe_load(section[section.index("route:") : section.index("```", section.index("route:"))])
    webhook = receiver["receivers"][0]["webhook_configs"][0]
    assert webhook["url"].endswith("/lambda-url/site-fencing/") and "basic_auth" in webhook["http_config"]


def test_unusable_lock_file_fails_start_up(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_PW", "pw")
    monkeypatch.setenv("ISPN_PW", "pw2")
    with pytest.raises(ConfigError) as raised:
        load_handler({**BASE, "FENCING_LOCK_FILE": str(tmp_path / "missing-dir" / "lock")})
    assert raised.value.field == "FENCING_LOCK_FILE"


def test_secret_is_re_read_after_its_ttl_and_a_failed_re_read_keeps_the_last_value(monkeypatch):
    monkeypatch.setenv("ROTATING", "v1")
    password = SecretPassword("WEBHOOK_USER_SECRET", "env:ROTATING", None, ttl=0)
    assert password() == "v1"
    monkeypatch.setenv("ROTATING", "v2")  # rotated
    assert password() == "v2"
    monkeypatch.delenv("ROTATING")  # the store is unreachable for a moment
    assert password() == "v2"
    assert "v2" not in repr(password)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_fencing_without_its_extra_says_how_to_install_it():
    # sys.modules[name] = None makes `import name` fail as if the package were not installed.
    done = _run(
        "import sys\n"
        "sys.modules['httpx'] = None\n"
        "from triggerfish.errors import ConfigError\n"
        "try:\n"
        "    import triggerfish.functions.fencing\n"
        "except ConfigError as exc:\n"
        "    print(exc.field, '|', exc.message)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "triggerfish.functions.fencing | needs httpx, which is not installed; run pip install 'triggerfish[fencing]'"
    )


def test_the_core_neither_imports_fencing_nor_depends_on_what_only_fencing_needs():
    done = _run(
        "import sys\n"
        "import triggerfish.cli, triggerfish.config, triggerfish.api.app, triggerfish.bridge.app, triggerfish.esm.engine\n"
        "import triggerfish.functions.runtime\n"
        "print(sorted(m for m in sys.modules if m.startswith('triggerfish.functions.fencing') or m == 'pydantic'))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    requires = importlib.metadata.requires("triggerfish") or []
    core = [r for r in requires if "extra ==" not in r]
    assert not [r for r in core if r.lower().startswith("pydantic")]
    assert "fencing" in (importlib.metadata.metadata("triggerfish").get_all("Provides-Extra") or [])
