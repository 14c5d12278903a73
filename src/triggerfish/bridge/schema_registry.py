"""The bridge's schema-registry client: confluent-kafka's ``SchemaRegistryClient``, its failures as bridge errors.

Every call blocks (HTTP to the registry) and is meant for a worker thread. The client caches schemas
by id and registrations by (subject, schema), so only a new schema costs a round trip. Failures
become the errors of :mod:`.schema_errors`, each naming the registry by its URL without credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from triggerfish.bridge.registry_config import URL, RegistryConfig
from triggerfish.bridge.schema_errors import INVALID_SCHEMA, RegistryUnavailable, SchemaConversionError, SchemaNotFound
from triggerfish.errors import ConfigError, KafkaClientError
from triggerfish.schemas.confluent import resolve_references

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryError

_T = TypeVar("_T")


# The registry libraries (the schemas extra: confluent-kafka's registry client, fastavro, protobuf) are
# imported when a registry is configured, not at start: they are a third of an idle bridge's memory.
def registry_failures() -> tuple[type[Exception], ...]:
    """What the registry client raises when the registry answers with an error or cannot be reached."""
    from confluent_kafka.schema_registry import SchemaRegistryError

    # the HTTP library confluent-kafka uses (httpx2 when installed, else httpx): its network errors are these
    from confluent_kafka.schema_registry.common._httpx_compat import httpx

    return (SchemaRegistryError, httpx.TransportError)


#: The registry's ``schemaType`` of each bridge format (Avro is the registry's default, sent as none).
SCHEMA_TYPES = {"avro": "AVRO", "protobuf": "PROTOBUF", "jsonschema": "JSON"}


class SchemaRegistry:
    """One registry client shared by the producer routes and every consumer instance."""

    def __init__(self, config: RegistryConfig) -> None:
        try:  # the schemas extra; without it the bridge serves Strimzi's formats only
            from confluent_kafka.schema_registry import SchemaRegistryClient
        except ImportError as exc:
            missing = exc.name or str(exc)
            raise ConfigError(URL, f"the schema-registry formats need confluent-kafka's registry support ({missing} "
                              "is not installed); pip install 'triggerfish[schemas]', or remove the key") from None
        self.config = config
        self.url = config.display_url
        # no retries: a client waiting on an HTTP request is better served by a prompt 503
        self.client = SchemaRegistryClient({**config.client_conf(), "max.retries": 0})

    def close(self) -> None:
        self.client.close()

    def schema(self, schema_id: int, fmt: str, what: str) -> Schema:
        """The schema with ``schema_id``; ``what`` ("value_schema_id", a record's topic@offset) names it in errors."""
        # Protobuf schemas come back as the base64 FileDescriptorProto confluent-kafka works with
        serialized = "serialized" if fmt == "protobuf" else None
        schema = self._call(lambda: self.client.get_schema(schema_id, fmt=serialized), f"schema id {schema_id}", what)
        want = SCHEMA_TYPES[fmt]
        got = schema.schema_type or "AVRO"
        if got != want:
            raise SchemaConversionError(f"Schema id {schema_id} in {self.url} ({what}) is a {got} schema, not {want}; "
                                        f"use the embedded format of {got} or a {want} schema id", INVALID_SCHEMA)
        return schema

    def references(self, schema: Schema, what: str) -> list[tuple[str, str]]:
        """(name, text) of the schemas ``schema`` references, each after its own references (Protobuf: serialized)."""
        def version(ref: Any) -> tuple[str, list[Any]]:
            registered = self._call(lambda: self.client.get_version(ref.subject, ref.version, fmt="serialized"),
                                    f"subject {ref.subject} version {ref.version} (a reference of {what})", what)
            return str(registered.schema.schema_str), list(registered.schema.references or [])
        return resolve_references(schema.references, version)

    def register(self, subject: str, schema_str: str, fmt: str, what: str) -> int:
        """Register ``schema_str`` under ``subject`` (or find it there); its id."""
        from confluent_kafka.schema_registry import Schema

        schema = Schema(schema_str, SCHEMA_TYPES[fmt])
        return self._call(lambda: self.client.register_schema(subject, schema), f"subject {subject}", what)

    def _call(self, fn: Callable[[], _T], target: str, what: str) -> _T:
        with self.errors(target, what):
            return fn()
        raise AssertionError("unreachable")  # errors() re-raises; mypy cannot see it

    @contextmanager
    def errors(self, target: str, what: str) -> Iterator[None]:
        """Registry and network failures inside the block as bridge errors naming ``target`` and ``what``."""
        registry_error, transport_error = registry_failures()
        try:
            yield
        except registry_error as exc:
            raise self._registry_error(exc, target, what) from None  # type: ignore[arg-type]
        except transport_error as exc:
            raise RegistryUnavailable(
                f"Schema registry {self.url} is unreachable ({type(exc).__name__}) while looking up {target} for "
                f"{what}. Retry later; if it persists check schema.registry.url and that the registry is "
                "reachable from the bridge.") from None

    def _registry_error(self, exc: SchemaRegistryError, target: str, what: str) -> Exception:
        status, code, text = exc.http_status_code, exc.error_code, exc.error_message
        if status == 404 or code in (40401, 40402, 40403):
            return SchemaNotFound(f"Schema registry {self.url} has no {target} ({what}): {text}. Register the schema "
                                  "first, or send it inline as key_schema / value_schema.", target)
        if status in (401, 403):
            return RegistryUnavailable(
                f"Schema registry {self.url} refused the bridge's credentials (HTTP {status}) for {target}. The request "
                "is fine; fix schema.registry.basic.auth.user.info (or the TLS client certificate) of the bridge.")
        if status in (409, 422) or code in (42201, 42202, 409):
            return SchemaConversionError(f"Schema registry {self.url} refused the schema for {target} ({what}): {text}. "
                                         "Fix the schema, or make it compatible with the subject's versions.", INVALID_SCHEMA)
        if status >= 500 or status < 0:
            return RegistryUnavailable(f"Schema registry {self.url} failed (HTTP {status}) for {target} ({what}): "
                                       f"{text}. Retry later.")
        return KafkaClientError(f"Schema registry {self.url} answered HTTP {status} ({code}) for {target} ({what}): {text}")
