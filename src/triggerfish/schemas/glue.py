"""An AWS Glue schema registry by ARN (``arn:aws:glue:REGION:ACCOUNT:registry/NAME``), read with boto3.

Records carry a schema version UUID (Glue's wire format, :mod:`.wire`); ``get_schema_version`` gives
its data format and definition (Protobuf: ``.proto`` text, compiled by :mod:`.protoc`). The endpoint follows boto3's usual settings (``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

from typing import Any

from triggerfish.schemas import wire
from triggerfish.schemas.errors import SCHEMA_NOT_FOUND, RecordSchemaError, RegistryUnavailable, require
from triggerfish.schemas.text import GLUE, SchemaText


class GlueRegistry:
    def __init__(self, arn: str, client: Any = None) -> None:
        self.url = arn
        parts = arn.split(":")
        self.region = parts[3] if len(parts) > 3 and parts[3] else None
        self.name = arn.rsplit("/", 1)[-1]
        self._errors = require("botocore.exceptions")  # boto3 is imported only by mappings that use Glue
        config = require("botocore.config").Config(connect_timeout=5, read_timeout=10,
                                                    retries={"max_attempts": 2, "mode": "standard"})
        self.client = client or require("boto3").client("glue", region_name=self.region, config=config)

    def frame(self, data: bytes) -> wire.Framed:
        return wire.glue(data)

    def fetch(self, schema_id: str) -> SchemaText:
        try:
            answer = self.client.get_schema_version(SchemaVersionId=schema_id)
        except self._errors.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "EntityNotFoundException":
                raise RecordSchemaError(SCHEMA_NOT_FOUND, f"Glue registry {self.url}: schema version {schema_id} "
                                        "not found; register it, or point SchemaRegistryURI at the producer's "
                                        "registry") from None
            raise self._unavailable(f"schema version {schema_id}", exc) from None
        except self._errors.BotoCoreError as exc:
            raise self._unavailable(f"schema version {schema_id}", exc) from None
        return SchemaText(str(answer["DataFormat"]), str(answer["SchemaDefinition"]), framing=GLUE)

    def subjects(self) -> list[str]:
        try:
            answer = self.client.list_schemas(RegistryId={"RegistryName": self.name})
        except (self._errors.ClientError, self._errors.BotoCoreError) as exc:
            raise self._unavailable("listing schemas", exc) from None
        return [str(s["SchemaName"]) for s in answer.get("Schemas", [])]

    def _unavailable(self, what: str, exc: Exception) -> RegistryUnavailable:
        if isinstance(exc, self._errors.ClientError):
            error = exc.response.get("Error", {})
            reason = f"{error.get('Code')}: {error.get('Message')}"
            fix = "grant glue:GetRegistry and glue:GetSchemaVersion to the credentials" \
                if error.get("Code") in ("AccessDeniedException", "UnrecognizedClientException") else \
                "records wait until Glue answers"
        else:
            reason, fix = f"{type(exc).__name__}: {exc}", "check AWS_ENDPOINT_URL and the network; records wait"
        return RegistryUnavailable(f"Glue registry {self.url}: {what}: {reason}; {fix}")

    def close(self) -> None:
        pass
