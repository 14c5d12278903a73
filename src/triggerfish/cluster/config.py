"""The ``Cluster:`` section of triggerfish.yaml and the ``--cluster*`` flags: which cluster a replica joins.

    Cluster:
      Name: orders                        # [A-Za-z0-9._-]{1,100}; the topics are triggerfish.<Name>.*
      BootstrapServers: [kafka-0:9092]    # the Kafka that holds the cluster's state (list or "a:1,b:2")
      Properties: {...}                   # librdkafka properties for it; ${env:VAR} / ${file:/path} resolved
      ReplicationFactor: 3                # of the topics triggerfish creates (-1: the broker's default)
      CreateTopics: true                  # false: they must exist (pre-created by an admin)

Property values are resolved here and never logged nor put in an error message: they hold passwords.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from triggerfish.errors import ConfigError
from triggerfish.validation import Fields

NAME_PATTERN = r"[A-Za-z0-9._-]{1,100}"
REPLICA_PATTERN = r"[A-Za-z0-9._:@-]{1,200}"
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:,\[\]/]+):(\d{1,5})")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z]+):([^}]*)\}")
# Properties the cluster's own clients set: a user value would break the config log or the board.
_OWNED = ("transactional.id", "group.id", "isolation.level", "bootstrap.servers", "metadata.broker.list")
_OWNED_PREFIXES = ("enable.",)
_FIELDS = ("Name", "BootstrapServers", "Properties", "ReplicationFactor", "CreateTopics")

ENV_NAME = "TRIGGERFISH_CLUSTER"
ENV_BOOTSTRAP = "TRIGGERFISH_CLUSTER_BOOTSTRAP"
ENV_REPLICA = "TRIGGERFISH_REPLICA_ID"


def default_replica_id() -> str:
    """The host name (a pod's name on Kubernetes) and the process id: unique while the process lives."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class ClusterConfig:
    """Where a replica keeps the cluster's state; ``properties`` are resolved and must never be logged."""

    name: str
    bootstrap_servers: tuple[str, ...]
    properties: Mapping[str, str] = field(default_factory=dict, repr=False)
    replica_id: str = field(default_factory=default_replica_id)
    replication_factor: int = -1
    create_topics: bool = True
    #: How long a replica stays live after its last heartbeat (the engine consumers' session.timeout.ms).
    session_timeout_s: float = 10.0

    @property
    def configs_topic(self) -> str:
        return f"triggerfish.{self.name}.configs"

    @property
    def status_topic(self) -> str:
        return f"triggerfish.{self.name}.status"

    @property
    def writer_id(self) -> str:
        """The one transactional.id every replica's config writer uses: init_transactions fences the others."""
        return f"triggerfish.{self.name}.configs-writer"

    @property
    def bootstrap(self) -> str:
        return ",".join(self.bootstrap_servers)

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings for any client of the state Kafka: bootstrap.servers plus the properties."""
        return {**self.properties, "bootstrap.servers": self.bootstrap}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "Cluster", replica_id: str | None = None) -> ClusterConfig:
        """Validate a ``Cluster:`` section; ConfigErrors name ``<where>.<Field>``."""
        fields = Fields(data, where, _FIELDS)
        name = fields.require("Name")
        name = fields.str_("Name", pattern=NAME_PATTERN,
                           hint="use 1 to 100 letters, digits, '.', '_' or '-' (it names the Kafka topics)")
        fields.require("BootstrapServers")
        bootstrap = parse_bootstrap(fields.raw("BootstrapServers"), fields.path("BootstrapServers"))
        properties = _properties(fields.dict_("Properties", {}), fields.path("Properties"))
        replication = fields.int_("ReplicationFactor", -1, 32767, -1)
        if replication == 0:
            raise ConfigError(fields.path("ReplicationFactor"), "0 is not a replication factor; use -1 (the "
                              "broker's default) or the number of copies (3 on a production cluster)")
        create = fields.bool_("CreateTopics", True)
        fields.done()
        rid = check_replica_id(replica_id, "--replica-id") if replica_id else default_replica_id()
        assert name is not None
        return cls(name=name, bootstrap_servers=bootstrap, properties=properties, replica_id=rid,
                   replication_factor=replication, create_topics=create)

    def with_overrides(self, *, name: str | None = None, bootstrap: str | Sequence[str] | None = None,
                       replica_id: str | None = None) -> ClusterConfig:
        """This config with the given flags' values (validated, errors naming the flag) in place."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_name(name, "--cluster")
        if bootstrap is not None:
            changes["bootstrap_servers"] = parse_bootstrap(bootstrap, "--cluster-bootstrap")
        if replica_id is not None:
            changes["replica_id"] = check_replica_id(replica_id, "--replica-id")
        return replace(self, **changes)


def from_cli(section: ClusterConfig | None, *, name: str | None, bootstrap: str | None,
             replica_id: str | None) -> ClusterConfig | None:
    """The cluster a ``run``/``status`` joins: flags, then env (TRIGGERFISH_CLUSTER, TRIGGERFISH_CLUSTER_BOOTSTRAP,
    TRIGGERFISH_REPLICA_ID), over the file's section; None means single-process mode."""
    name = name or os.environ.get(ENV_NAME) or None
    bootstrap = bootstrap or os.environ.get(ENV_BOOTSTRAP) or None
    replica_id = replica_id or os.environ.get(ENV_REPLICA) or None
    if section is None:
        if name is None and bootstrap is None:
            return None
        if bootstrap is None:
            raise ConfigError("--cluster-bootstrap", f"--cluster {name} needs the Kafka that holds the cluster's "
                              f"state; pass --cluster-bootstrap HOST:PORT (or set {ENV_BOOTSTRAP}), or add a "
                              "Cluster: section to the config file")
        if name is None:
            raise ConfigError("--cluster", f"--cluster-bootstrap needs a cluster name; pass --cluster NAME (or set "
                              f"{ENV_NAME}), or add a Cluster: section to the config file")
        return ClusterConfig(
            name=check_name(name, "--cluster"), bootstrap_servers=parse_bootstrap(bootstrap, "--cluster-bootstrap"),
            replica_id=check_replica_id(replica_id, "--replica-id") if replica_id else default_replica_id())
    return section.with_overrides(name=name, bootstrap=bootstrap, replica_id=replica_id)


def check_name(value: str, where: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise ConfigError(where, f"cluster name {value!r} is not allowed; use 1 to 100 letters, digits, '.', '_' "
                          "or '-' (it names the Kafka topics)")
    return value


def check_replica_id(value: str, where: str) -> str:
    if not re.fullmatch(REPLICA_PATTERN, value):
        raise ConfigError(where, f"replica id {value!r} is not allowed; use 1 to 200 letters, digits, '.', '_', "
                          "':', '@' or '-' (the pod or host name is a good one)")
    return value


def parse_bootstrap(value: Any, where: str) -> tuple[str, ...]:
    """``[a:1, b:2]`` or ``"a:1,b:2"`` -> ``("a:1", "b:2")``; a ConfigError naming ``where`` otherwise."""
    if isinstance(value, str):
        items: list[Any] = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(where, "expected a list of HOST:PORT or a \"HOST:PORT,HOST:PORT\" string")
    if not items:
        raise ConfigError(where, "no broker given; list at least one HOST:PORT of the Kafka that holds the state")
    for item in items:
        match = _HOST_PORT.fullmatch(item) if isinstance(item, str) else None
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise ConfigError(where, f"{item!r} is not HOST:PORT (e.g. kafka-0.kafka:9092)")
    return tuple(items)


def _properties(raw: dict[str, Any], where: str) -> dict[str, str]:
    resolved: dict[str, str] = {}
    for key, value in raw.items():
        path = f"{where}.{key}"
        if not isinstance(key, str) or not key:
            raise ConfigError(path, "property names are librdkafka keys such as security.protocol")
        if key in _OWNED or key.startswith(_OWNED_PREFIXES):
            raise ConfigError(path, f"{key} is set by triggerfish's cluster clients; remove it")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            # the value itself is never shown: it may be a password
            raise ConfigError(path, "expected a string, number or boolean")
        resolved[key] = resolve_placeholders(value, path)
    return resolved


def resolve_placeholders(value: str, where: str) -> str:
    """Substitute ``${env:VAR}`` and ``${file:/path}`` (one trailing newline dropped) in ``value``."""

    def sub(match: re.Match[str]) -> str:
        provider, ref = match.group(1), match.group(2)
        if provider == "env":
            if ref not in os.environ:
                raise ConfigError(where, f"environment variable {ref} is not set (referenced as ${{env:{ref}}})")
            return os.environ[ref]
        if provider == "file":
            try:
                text = Path(ref).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise ConfigError(where, f"cannot read {ref} for ${{file:...}}: {reason}") from None
            return text[:-1] if text.endswith("\n") else text
        raise ConfigError(where, f"${{{provider}:...}} is not a known placeholder; use ${{env:VAR}} or ${{file:/path}}")

    return _PLACEHOLDER.sub(sub, value)
