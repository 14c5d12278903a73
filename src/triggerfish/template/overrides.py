"""What cannot exist locally, redirected: brokers and secrets, from ``--kafka-bootstrap`` and an overrides file.

The overrides file (``--overrides overrides.yaml``) is keyed by a logical id or an ARN::

    OrdersStream:                    # an AWS::Lambda::EventSourceMapping, or a SAM event as Orders.Stream,
      BootstrapServers: [127.0.0.1:9092]          # or an AWS::MSK::Cluster / its ARN: every mapping on it
      SourceAccessConfigurations: []              # optional: replaces the template's list (drop auth/VPC)
    KafkaSecret:                     # an AWS::SecretsManager::Secret, or a secret's ARN
      Secret: env:KAFKA_SECRET                    # or file://secrets/kafka.json (relative to this file)

``--kafka-bootstrap HOST:PORT`` sends every mapping the file does not redirect to that broker. Secret
references then go through triggerfish's secrets mechanism (:mod:`triggerfish.secrets`) as any
``file://`` or ``env:`` reference does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from triggerfish.errors import ConfigError
from triggerfish.validation import Fields

_KEYS = ("BootstrapServers", "SourceAccessConfigurations", "Secret")


@dataclass(frozen=True)
class Redirect:
    """One override and where it was written (for error paths)."""

    value: Any
    where: str


@dataclass(frozen=True)
class Overrides:
    bootstrap: tuple[str, ...] = ()
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "--overrides"

    def _first(self, keys: list[str], name: str) -> Redirect | None:
        for key in keys:
            entry = self.entries.get(key)
            if entry is not None and name in entry:
                return Redirect(entry[name], f"{self.source}: {key}.{name}")
        return None

    def brokers(self, keys: list[str]) -> Redirect | None:
        found = self._first(keys, "BootstrapServers")
        if found is None and self.bootstrap:
            return Redirect(list(self.bootstrap), "--kafka-bootstrap")
        return found

    def access(self, keys: list[str]) -> Redirect | None:
        return self._first(keys, "SourceAccessConfigurations")

    def secret(self, keys: list[str]) -> Redirect | None:
        return self._first(keys, "Secret")


def load(path: Path | None, bootstrap: list[str]) -> Overrides:
    servers = tuple(s for value in bootstrap for s in value.split(",") if s)
    if path is None:
        return Overrides(servers)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError("--overrides", f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("--overrides", f"{path} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "must map logical ids (or ARNs) to {BootstrapServers, SourceAccessConfigurations, "
                                     "Secret}")
    entries: dict[str, dict[str, Any]] = {}
    for key, entry in data.items():
        f = Fields(entry, f"{path}: {key}", _KEYS)
        out: dict[str, Any] = {}
        servers_list = f.list_("BootstrapServers", min_len=1, max_len=10)
        if servers_list is not None:
            out["BootstrapServers"] = [str(s) for s in servers_list]
        access = f.list_("SourceAccessConfigurations")
        if access is not None:
            out["SourceAccessConfigurations"] = access
        secret = f.str_("Secret", min_len=1)
        if secret is not None:
            out["Secret"] = _local_reference(secret, path.resolve().parent, f.path("Secret"))
        f.done()
        entries[str(key)] = out
    return Overrides(servers, entries, str(path))


def _local_reference(ref: str, base: Path, where: str) -> str:
    """``file://relative.json`` is read relative to the overrides file; ``env:`` and ARNs pass as they are."""
    if ref.startswith("file://"):
        rest = ref[len("file://"):]
        return "file://" + str(Path(rest) if rest.startswith("/") else (base / rest).resolve())
    if ref.startswith(("env:", "arn:aws:secretsmanager:")):
        return ref
    raise ConfigError(where, f"'{ref}' is not a secret reference; use file://path.json, env:VAR or a Secrets Manager ARN")
