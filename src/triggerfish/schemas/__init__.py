"""Schema registries: framed Kafka records (Avro, Protobuf, JSON Schema) decoded with their registered schema.

Protocol only, no engine policy: :mod:`.wire` reads the Confluent and Glue framing, :mod:`.registries`
fetches schemas (a Confluent-compatible registry by URL, an AWS Glue registry by ARN), :mod:`.formats`
turns a schema into a decoder, and :mod:`.decoder` ties them together with a cache by schema id.
What the engine does with a record that fails (destination, drop, retry) is ``esm.schema_records``.
"""

from triggerfish.schemas.decoder import Decoded, SchemaDecoder
from triggerfish.schemas.errors import (
    DESERIALIZATION_ERROR,
    SCHEMA_NOT_FOUND,
    RecordSchemaError,
    RegistryUnavailable,
)
from triggerfish.schemas.registries import Registry, open_registry

__all__ = [
    "DESERIALIZATION_ERROR", "SCHEMA_NOT_FOUND", "Decoded", "RecordSchemaError", "Registry", "RegistryUnavailable",
    "SchemaDecoder", "open_registry",
]
