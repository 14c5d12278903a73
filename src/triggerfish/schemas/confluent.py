"""A Confluent-compatible schema registry (Confluent, Apicurio's ccompat API, ...) by URL.

Uses confluent-kafka's ``SchemaRegistryClient``. ``AccessConfigs`` are Lambda's: ``BASIC_AUTH`` (secret
``{"username", "password"}``), ``CLIENT_CERTIFICATE_TLS_AUTH`` (``{"certificate", "privateKey",
"privateKeyPassword"?}``) and ``SERVER_ROOT_CA_CERTIFICATE`` (``{"certificate"}``); the PEMs go to private
temporary files because the client takes paths.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from triggerfish import secrets
from triggerfish.errors import SecretError
from triggerfish.schemas import wire
from triggerfish.schemas.errors import SCHEMA_NOT_FOUND, RecordSchemaError, RegistryUnavailable, require, safe_url
from triggerfish.schemas.text import AVRO, PROTOBUF, SchemaText

#: Seconds per registry request; the client retries up to ``max.retries`` times.
TIMEOUT_S = 5


class ConfluentRegistry:
    def __init__(self, url: str, access_configs: Sequence[Mapping[str, Any]] = (), timeout: float = TIMEOUT_S) -> None:
        self.url = safe_url(url)
        self._files: list[str] = []
        #: (subject, version) -> (schema text, its references): what references resolve to
        self._versions: dict[tuple[str, int], tuple[str, list[Any]]] = {}
        conf: dict[str, Any] = {"url": url, "timeout": timeout, "max.retries": 1, "retries.wait.ms": 200}
        for access in access_configs:
            kind, ref = str(access.get("Type", "")), str(access.get("URI", ""))
            secret = secrets.read_json(ref)
            try:
                if kind == "BASIC_AUTH":
                    conf["basic.auth.user.info"] = f"{secret['username']}:{secret['password']}"
                elif kind == "CLIENT_CERTIFICATE_TLS_AUTH":
                    conf["ssl.certificate.location"] = self._pem(secret["certificate"])
                    conf["ssl.key.location"] = self._pem(secret["privateKey"])
                    if secret.get("privateKeyPassword"):
                        conf["ssl.key.password"] = secret["privateKeyPassword"]
                elif kind == "SERVER_ROOT_CA_CERTIFICATE":
                    conf["ssl.ca.location"] = self._pem(secret["certificate"])
                else:
                    raise SecretError(f"schema registry {self.url}: AccessConfigs Type {kind!r} is not one of "
                                      "BASIC_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE")
            except KeyError as exc:
                raise SecretError(f"secret {ref} ({kind} for schema registry {self.url}) has no {exc.args[0]!r} "
                                  "field; add it to the secret") from None
        self._auth = "BASIC_AUTH" if "basic.auth.user.info" in conf else (
            "CLIENT_CERTIFICATE_TLS_AUTH" if "ssl.certificate.location" in conf else "")
        registry = require("confluent_kafka.schema_registry")
        self._registry_error: type[Exception] = registry.SchemaRegistryError
        self.client = registry.SchemaRegistryClient(conf)

    def _pem(self, text: str) -> str:
        fd, path = tempfile.mkstemp(prefix="triggerfish-registry-", suffix=".pem")  # mode 0600
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self._files.append(path)
        return path

    def frame(self, data: bytes) -> wire.Framed:
        return wire.confluent(data)

    def fetch(self, schema_id: str) -> SchemaText:
        what = f"schema id {schema_id}"
        try:
            schema = self.client.get_schema(int(schema_id))
            data_format = schema.schema_type or AVRO
            fmt = "serialized" if data_format == PROTOBUF else None  # base64 FileDescriptorProtos; Apicurio: text as registered
            if fmt:
                schema = self.client.get_schema(int(schema_id), fmt=fmt)
        except self._registry_error as exc:
            raise self._error(exc, what) from None
        except Exception as exc:  # noqa: BLE001 - httpx's connection and timeout errors, and what else the client raises
            raise self._unreachable(exc, what) from None

        def version(ref: Any) -> tuple[str, list[Any]]:
            key = (str(ref.subject), int(ref.version))
            found = self._versions.get(key)
            if found is None:  # a subject's version never changes: asked for once, whichever schema uses it
                found = self._versions[key] = self._version(
                    f"{what}: its reference {ref.name} (subject {ref.subject} version {ref.version})", ref, fmt)
            return found
        return SchemaText(data_format, str(schema.schema_str), tuple(resolve_references(schema.references, version)))

    def _version(self, what: str, ref: Any, fmt: str | None) -> tuple[str, list[Any]]:
        try:
            registered = self.client.get_version(ref.subject, ref.version, fmt=fmt)
        except self._registry_error as exc:
            raise self._error(exc, what) from None
        except Exception as exc:  # noqa: BLE001 - httpx's connection and timeout errors, and what else the client raises
            raise self._unreachable(exc, what) from None
        return str(registered.schema.schema_str), list(registered.schema.references or [])

    def subjects(self) -> list[str]:
        try:
            return list(self.client.get_subjects())
        except self._registry_error as exc:
            raise self._error(exc, "listing subjects") from None
        except Exception as exc:  # noqa: BLE001 - as in fetch
            raise self._unreachable(exc, "listing subjects") from None

    def _error(self, exc: Any, what: str) -> Exception:  # a confluent_kafka SchemaRegistryError
        status = exc.http_status_code
        if status == 404:
            return RecordSchemaError(SCHEMA_NOT_FOUND, f"schema registry {self.url}: {what} not found; register the "
                                     "schema in this registry, or point SchemaRegistryURI at the registry the "
                                     "producer used")
        if status in (401, 403):
            how = f"the {self._auth} secret in AccessConfigs" if self._auth else "AccessConfigs (none given)"
            return RegistryUnavailable(f"schema registry {self.url}: {what}: HTTP {status} ({exc.error_message}); "
                                       f"check {how}: the credential is wrong or lacks read access")
        return RegistryUnavailable(f"schema registry {self.url}: {what}: HTTP {status} ({exc.error_message}); "
                                   "records wait until the registry answers")

    def _unreachable(self, exc: Exception, what: str) -> RegistryUnavailable:
        reason = str(exc).replace(self.url, "").strip() or type(exc).__name__
        if "SSL" in reason or "CERTIFICATE" in reason.upper():
            fix = ("the TLS handshake failed: check the SERVER_ROOT_CA_CERTIFICATE (the registry's CA) and "
                   "CLIENT_CERTIFICATE_TLS_AUTH secrets")
        else:
            fix = "start the registry or fix SchemaRegistryURI"
        return RegistryUnavailable(f"schema registry {self.url}: {what}: unreachable ({type(exc).__name__}: "
                                   f"{reason[:200]}); {fix}; records wait until it answers")

    def close(self) -> None:
        for path in self._files:
            try:
                os.unlink(path)
            except OSError:
                pass
        self._files.clear()


def resolve_references(refs: Any, version: Callable[[Any], tuple[str, list[Any]]]) -> list[tuple[str, str]]:
    """(reference name, schema text) of each schema ``refs`` (confluent-kafka ``SchemaReference``s) reach, each after
    the ones it references, each subject version once; ``version(ref)`` gives a reference's text and its references."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, int]] = set()

    def walk(refs: Any) -> None:
        for ref in refs or ():
            key = (str(ref.subject), int(ref.version))
            if key in seen:
                continue
            seen.add(key)
            text, nested = version(ref)
            walk(nested)
            out.append((str(ref.name), text))
    walk(refs)
    return out
