"""Reading what a ``kafka://`` on-failure destination wrote: Lambda's failure document, one per record."""

from __future__ import annotations

import json
from base64 import b64decode
from typing import Any


def failure_document(message: Any) -> dict[str, Any]:
    """The JSON failure document a destination message holds."""
    document = json.loads(message.value())
    assert isinstance(document, dict)
    return document


def failed_record(message: Any) -> dict[str, Any]:
    """The one record of the event in the document's ``payload``."""
    (records,) = failure_document(message)["payload"]["records"].values()
    (record,) = records
    assert isinstance(record, dict)
    return record


def failed_value(message: Any) -> bytes | None:
    """The failed record's value, decoded from the document's payload."""
    value = failed_record(message).get("value")
    return None if value is None else b64decode(value)
