"""A mapping's ``SchemaRegistryConfig`` applied to polled records, as Lambda does (policy; the protocol is
:mod:`triggerfish.schemas`).

    poll -> decode KEY and/or VALUE (schema cached by id) -> FilterCriteria on the decoded value -> buffer

* ``EventRecordFormat`` JSON: the decoded attribute as JSON text (base64 in the event, like every value);
  SOURCE: the original bytes without the registry's header. Either way the record gains
  ``keySchemaMetadata`` / ``valueSchemaMetadata`` ``{"dataFormat", "schemaId"}``.
* A record that cannot be decoded (``SCHEMA_NOT_FOUND``, ``DESERIALIZATION_ERROR``) goes to the on-failure
  destination, or is dropped and counted without one; either way ``SchemaRegistryErrorCount`` counts it
  and its offset is committed with the records around it.
* A registry that cannot be reached for a schema not cached yet, or a destination that does not take a
  failed record, raises ``SchemaRetry``: nothing of the poll is kept and the runner reads again from the
  committed offsets after a pause, so no record is dropped for an outage.

Built only for mappings with a SchemaRegistryConfig: mappings without one keep the plain poll path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import DestinationError, SecretError, TriggerfishError
from triggerfish.esm.access import lambda_field
from triggerfish.esm.destinations import Failure
from triggerfish.esm.drive import OnFailure
from triggerfish.esm.event import Record, SchemaRecord, metadata_members
from triggerfish.esm.partitions import filtered_record
from triggerfish.schemas import RecordSchemaError, RegistryUnavailable, SchemaDecoder, open_registry
from triggerfish.schemas.errors import MissingExtra, safe_url
from triggerfish.schemas.formats import to_json

_log = logging.getLogger("triggerfish.esm")

#: The mapping's problem while records wait for the registry (Lambda publishes no sentence for it).
REGISTRY_PROBLEM = "PROBLEM: Schema registry error."


class SchemaRetry(TriggerfishError):
    """The poll cannot be decided now (registry down for a new schema id, destination down): read it again later."""


class SchemaMetrics(Protocol):
    def schema_registry_error(self) -> None: ...

    def dropped(self, records: int) -> None: ...

    def destination_delivered(self, records: int) -> None: ...

    def destination_error(self) -> None: ...


class Settings:
    """What a ``SchemaRegistryConfig`` asks for (already validated by esm.mapping_fields)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.uri = str(config["SchemaRegistryURI"])
        self.source = config.get("EventRecordFormat", "JSON") == "SOURCE"
        self.access_configs = list(config.get("AccessConfigs") or [])
        attributes = {str(c.get("Attribute")) for c in config.get("SchemaValidationConfigs") or []}
        self.key = "KEY" in attributes
        self.value = "VALUE" in attributes or not attributes

    @classmethod
    def of(cls, mapping: Any) -> Settings | None:
        """The mapping's SchemaRegistryConfig, or None when it has none."""
        configs = [getattr(mapping, "kafka_event_source_config", None)] + [
            lambda_field(mapping, f) for f in ("SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig")]
        registry = next((c["SchemaRegistryConfig"] for c in configs if c and c.get("SchemaRegistryConfig")), None)
        return cls(dict(registry)) if registry else None


class StatusSink(Protocol):
    def set_problem(self, problem: Diagnosis | None) -> None: ...


class SchemaRecords:
    """Turns polled messages into records with the mapping's schema registry (the poll thread only).

    Lives as long as the mapping's runner, so the schema cache survives the re-reads after an outage;
    the registry is opened (its secrets read) at the first record, and again after a failure to open it.
    """

    def __init__(self, settings: Settings, *, accept: Callable[[bytes | None], bool] | None, metrics: SchemaMetrics,
                 status: StatusSink | None = None, name: str = "") -> None:
        self.settings = settings
        self.accept = accept
        self.metrics = metrics
        self.status = status
        self.name = name
        #: Where undecodable records go (set for each consume by the runner); None = dropped and counted.
        self.on_failure: OnFailure | None = None
        #: Polls in a row that had to be read again (the runner waits ``retry_delay(retries)`` before re-reading).
        self.retries = 0
        #: The last poll was not kept: the runner must read again from the committed offsets.
        self.waiting = False
        self._decoder: SchemaDecoder | None = None
        #: (key (format, id), value (format, id)) -> the metadata dict and its JSON members, built once per schema
        self._members: dict[tuple[Any, Any], tuple[dict[str, Any], bytes]] = {}

    @classmethod
    def of(cls, mapping: Any, *, accept: Callable[[bytes | None], bool] | None, metrics: SchemaMetrics,
           status: StatusSink | None = None) -> SchemaRecords | None:
        """The mapping's schema registry step, or None when it has no SchemaRegistryConfig (the plain path)."""
        settings = Settings.of(mapping)
        if settings is None:
            return None
        return cls(settings, accept=accept, metrics=metrics, status=status, name=getattr(mapping, "uuid", "") or "")

    @property
    def decoder(self) -> SchemaDecoder:
        if self._decoder is None:
            try:
                registry = open_registry(self.settings.uri, self.settings.access_configs)
            except (SecretError, MissingExtra) as exc:
                raise SchemaRetry(f"schema registry {safe_url(self.settings.uri)}: {exc}") from None
            self._decoder = SchemaDecoder(registry)
        return self._decoder

    def records_of(self, messages: Sequence[Any], on_error: Callable[[Any], None]) -> tuple[list[Record], int]:
        """Records and how many FilterCriteria rejected (failed records become offset-only placeholders);
        nothing, with ``waiting`` set, when the poll must be read again later."""
        try:
            out = self._records_of(messages, on_error)
        except SchemaRetry as exc:
            self.retries += 1
            self.waiting = True
            _log.error("mapping %s: %s", self.name, exc)
            if self.status is not None:
                self.status.set_problem(retry_problem(str(exc)))
            return [], 0
        self.waiting = False
        if self.retries:
            self.retries = 0
            if self.status is not None:
                self.status.set_problem(None)
        return out

    def _records_of(self, messages: Sequence[Any], on_error: Callable[[Any], None]) -> tuple[list[Record], int]:
        records: list[Record] = []
        filtered = 0
        for msg in messages:
            err = msg.error()
            if err is not None:
                on_error(err)
                continue
            base = Record.from_message(msg)
            try:
                record, match_on = self._decode(base)
            except RecordSchemaError as exc:
                self._failed(base, exc.at(_where(base)))
                records.append(filtered_record(base.topic, base.partition, base.offset))
                continue
            except RegistryUnavailable as exc:
                raise SchemaRetry(str(exc.at(_where(base)))) from None
            except MissingExtra as exc:
                raise SchemaRetry(f"{_where(base)}: {exc}") from None
            if self.accept is not None and not self.accept(match_on):
                records.append(filtered_record(base.topic, base.partition, base.offset))
                filtered += 1
            else:
                records.append(record)
        return records, filtered

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.registry.close()
            self._decoder = None

    def _decode(self, base: Record) -> tuple[Record, bytes | None]:
        s = self.settings
        key, value, match_on = base.key, base.value, base.value
        key_meta = value_meta = None
        if s.key and key is not None:
            key, _, key_meta = self._attribute(key, "keySchemaMetadata")
        if s.value and value is not None:
            value, match_on, value_meta = self._attribute(value, "valueSchemaMetadata")
        members = self._members.get((key_meta, value_meta))
        if members is None:
            metadata = {k: {"dataFormat": m[0], "schemaId": m[1]}
                        for k, m in (("keySchemaMetadata", key_meta), ("valueSchemaMetadata", value_meta)) if m}
            members = self._members[(key_meta, value_meta)] = (metadata, metadata_members(metadata))
        return SchemaRecord(base, key, value, *members), match_on

    def _attribute(self, data: bytes, field: str) -> tuple[bytes, bytes | None, tuple[str, str]]:
        """(what the event carries, what FilterCriteria sees, (format, id)) for one decoded attribute."""
        d = self.decoder.decode(data)
        meta = (d.data_format, d.schema_id)
        if not self.settings.source:
            as_json = to_json(d.value)
            return as_json, as_json, meta
        return d.payload, (to_json(d.value) if self.accept is not None else None), meta

    def _failed(self, record: Record, exc: RecordSchemaError) -> None:
        self.metrics.schema_registry_error()
        target = self.on_failure
        if target is None:
            _log.error("mapping %s: %s: dropped: %s", self.name, exc.condition, exc)
            self.metrics.dropped(1)
            return
        failure = Failure(exc.condition, target.function_arn(), 0, status_code=None, error_type=exc.condition,
                          error_message=str(exc))
        try:
            target.destination.send([record], failure, target.source, target.event([record]))
        except DestinationError as err:
            self.metrics.destination_error()
            raise SchemaRetry(f"{_where(record)}: {exc.condition}: {err}") from None
        _log.warning("mapping %s: %s: sent to %s: %s", self.name, exc.condition, target.destination.target, exc)
        self.metrics.destination_delivered(1)


def _where(record: Record) -> str:
    return f"{record.topic}-{record.partition}@{record.offset}"


def retry_problem(message: str) -> Diagnosis:
    return Diagnosis(REGISTRY_PROBLEM, message, "records wait uncommitted and are read again until the schema "
                     "registry (or the on-failure destination) answers", stage="schema_registry")
