"""A mapping's schema registry: ``open_registry`` picks the kind from ``SchemaRegistryURI``.

An ``arn:aws:glue:...:registry/NAME`` URI is an AWS Glue registry (boto3; ``AWS_ENDPOINT_URL`` applies);
an ``http(s)://`` URL is a Confluent-compatible registry (confluent-kafka's client), reached with the
mapping's ``AccessConfigs`` secrets. Both satisfy ``Registry``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from triggerfish.schemas.confluent import ConfluentRegistry
from triggerfish.schemas.glue import GlueRegistry
from triggerfish.schemas.text import SchemaText
from triggerfish.schemas.wire import Framed


class Registry(Protocol):
    #: How messages name the registry (a URL without credentials, or the Glue ARN).
    url: str

    def frame(self, data: bytes) -> Framed:
        """Split a record into schema id and payload; RecordSchemaError when it is not framed."""
        ...

    def fetch(self, schema_id: str) -> SchemaText:
        """The schema of an id; RecordSchemaError(SCHEMA_NOT_FOUND) or RegistryUnavailable."""
        ...

    def subjects(self) -> list[str]:
        """The registry's subjects (Glue: schema names); RegistryUnavailable when it cannot say."""
        ...

    def close(self) -> None: ...


def open_registry(uri: str, access_configs: Sequence[Mapping[str, Any]] = ()) -> Registry:
    """The registry ``SchemaRegistryURI`` names; reads the ``AccessConfigs`` secrets (SecretError if one cannot be read)."""
    if uri.startswith("arn:"):
        return GlueRegistry(uri)
    return ConfluentRegistry(uri, access_configs)
