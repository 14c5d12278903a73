"""A schema as a registry gives it (``SchemaText``), and the names shared by the format decoders.

``framing`` says which registry's wire format the records of this schema use, because Protobuf
records name their message differently in each: Confluent writes an array of message indexes (a path
through nested messages), Glue one index into the file's messages sorted by full name (:mod:`.protobuf`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

AVRO, PROTOBUF, JSON = "AVRO", "PROTOBUF", "JSON"
FORMATS = (AVRO, PROTOBUF, JSON)
CONFLUENT, GLUE = "confluent", "glue"

#: A payload decoder: payload bytes -> the record's value as plain Python data.
Decode = Callable[[bytes], Any]


class SchemaFormatError(ValueError):
    """The registry's schema cannot be used (not Avro/JSON Schema, Protobuf that does not compile, a $ref that
    resolves to nothing)."""


@dataclass(frozen=True)
class SchemaText:
    """A schema as a registry gives it: its format, its text, and the schemas it references (Confluent's
    ``references``: (name, text) pairs, each after the ones it references itself)."""

    data_format: str
    text: str
    references: tuple[tuple[str, str], ...] = ()
    #: CONFLUENT or GLUE: whose wire format the records use.
    framing: str = CONFLUENT
