"""Where a value came from in the template, so an error names the path the user wrote.

Functions and mappings are validated in triggerfish's (Lambda API) shape, after SAM expansion; an
error then names an API field (``BatchSize``, ``SelfManagedEventSource.Endpoints...``). An ``Origin``
turns that field into the template path: ``Resources.Orders.Properties.Events.Stream.Properties.BatchSize``
for a SAM event, ``Resources.OrdersMapping.Properties.BatchSize`` for an
``AWS::Lambda::EventSourceMapping``, ``Globals.Function.Timeout`` for a value a function took from
Globals. ``relocate`` re-raises a ``ConfigError`` at that path with the same text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from triggerfish.errors import ConfigError, InvalidParameterError

#: API field prefix -> the name the template uses, by kind of origin. Longest prefix wins.
_SAM_KAFKA = {
    "SelfManagedEventSource": "KafkaBootstrapServers",
    "SelfManagedEventSource.Endpoints.KafkaBootstrapServers": "KafkaBootstrapServers",
    "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS": "KafkaBootstrapServers",
    "SelfManagedKafkaEventSourceConfig": "ConsumerGroupId",
    "SelfManagedKafkaEventSourceConfig.ConsumerGroupId": "ConsumerGroupId",
    "SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig": "SchemaRegistryConfig",
    "KMSKeyArn": "KmsKeyArn",
}
_SAM_MSK = {
    "EventSourceArn": "Stream",
    "AmazonManagedKafkaEventSourceConfig": "ConsumerGroupId",
    "AmazonManagedKafkaEventSourceConfig.ConsumerGroupId": "ConsumerGroupId",
    "AmazonManagedKafkaEventSourceConfig.SchemaRegistryConfig": "SchemaRegistryConfig",
    "KMSKeyArn": "KmsKeyArn",
}
_CFN_MAPPING = {"KMSKeyArn": "KmsKeyArn"}
_CFN_FUNCTION = {"CodeUri": "Code"}


@dataclass(frozen=True)
class Origin:
    """A function or mapping's place in the template: ``base`` is its Properties' path."""

    base: str
    renames: Mapping[str, str] = field(default_factory=dict)
    #: API field prefix -> an absolute template path (Globals, another resource, the overrides)
    elsewhere: Mapping[str, str] = field(default_factory=dict)

    def path(self, api_field: str) -> str:
        """The template path of ``api_field`` (``""`` = the object itself)."""
        if not api_field:
            return self.base
        for table, absolute in ((self.elsewhere, True), (self.renames, False)):
            prefix = _longest_prefix(api_field, table)
            if prefix is not None:
                rest = api_field[len(prefix):]
                target = table[prefix]
                return f"{target}{rest}" if absolute else f"{self.base}.{target}{rest}"
        return f"{self.base}.{api_field}"

    @classmethod
    def sam_event(cls, function: str, event: str, kind: str) -> Origin:
        return cls(f"Resources.{function}.Properties.Events.{event}.Properties",
                   _SAM_MSK if kind == "MSK" else _SAM_KAFKA, {"FunctionName": f"Resources.{function}"})

    @classmethod
    def cfn_mapping(cls, logical_id: str) -> Origin:
        return cls(f"Resources.{logical_id}.Properties", _CFN_MAPPING)

    @classmethod
    def function(cls, logical_id: str, *, sam: bool, from_globals: tuple[str, ...] = (),
                 url: str | None = None) -> Origin:
        elsewhere = {name: f"Globals.Function.{name}" for name in from_globals}
        if url is not None:
            elsewhere["FunctionUrlConfig"] = url
        return cls(f"Resources.{logical_id}.Properties", {} if sam else _CFN_FUNCTION, elsewhere)


def _longest_prefix(api_field: str, table: Mapping[str, str]) -> str | None:
    best = None
    for prefix in table:
        if (api_field == prefix or api_field.startswith((prefix + ".", prefix + "["))) and (
                best is None or len(prefix) > len(best)):
            best = prefix
    return best


def relocate(exc: ConfigError, field_path: str) -> ConfigError:
    """The same error, naming ``field_path``; the class (and Lambda's text) are kept."""
    if isinstance(exc, InvalidParameterError):
        moved: ConfigError = type(exc)(field_path, exc.lambda_message, exc.hint)
    else:
        moved = ConfigError(field_path, exc.message)
    return moved


_ITEM = re.compile(r"(Functions|EventSourceMappings)\[(\d+)\]\.?(.*)")


def split_project_field(field_path: str) -> tuple[str, int, str] | None:
    """``EventSourceMappings[2].BatchSize`` -> ``("EventSourceMappings", 2, "BatchSize")``."""
    match = _ITEM.fullmatch(field_path)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None
