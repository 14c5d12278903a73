"""Avro's JSON encoding, as Confluent's REST proxy reads and writes Avro records (unions as ``{"int": 25}``).

fastavro does the encoding; the serializers and deserializers work with plain Python values. Input
in Avro's JSON encoding is accepted, and so is a plain value (``"age": 25``) when the JSON encoding
does not fit, which is what people write by hand.
"""

from __future__ import annotations

import io
import json
from typing import Any

from triggerfish.bridge.formats import dumps


def parse(schema_str: str) -> Any:
    """A parsed schema, or ``None`` when fastavro cannot parse it alone (it names types of referenced schemas)."""
    import fastavro  # the schemas extra, loaded with the first schema (not at the bridge's start)

    try:
        return fastavro.parse_schema(json.loads(schema_str))
    except Exception:  # references to other subjects' named types: values pass as plain JSON
        return None


def from_json(value: Any, schema: Any) -> Any:
    """``value`` as the Python value the Avro serializer takes: Avro's JSON encoding if it fits, else as given."""
    if schema is None:
        return value
    import fastavro

    try:
        records = list(fastavro.json_reader(io.StringIO(dumps(value).decode()), schema))
    except Exception:  # not in Avro's JSON encoding; the serializer judges the plain value
        return value
    return records[0] if len(records) == 1 else value


def to_json(obj: Any, schema: Any) -> Any:
    """A decoded Avro value in Avro's JSON encoding (what Confluent's REST proxy answers with)."""
    if schema is None:
        return obj
    import fastavro

    out = io.StringIO()
    fastavro.json_writer(out, schema, [obj])
    return json.loads(out.getvalue())
