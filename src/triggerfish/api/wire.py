"""Reading and writing rest-json bodies and query parameters the way Lambda does."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from triggerfish.errors import InvalidRequestContentError, ValidationError
from triggerfish.json_input import loads


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContentError(f"Could not parse request body into json: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequestContentError("Could not parse request body into json: expected a JSON object")
    return value


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status_code=status, headers=headers, media_type="application/json")


def query_int(request: Request, name: str, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    where = name[:1].lower() + name[1:]
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            "",
            f"1 validation error detected: Value '{raw}' at '{where}' failed to satisfy constraint: "
            "Member must be an integer"
        ) from None
    if value < lo:
        raise ValidationError(
            "",
            f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {lo}"
        )
    if value > hi:
        raise ValidationError(
            "",
            f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: "
            f"Member must have value less than or equal to {hi}"
        )
    return value
