"""Reading bridge requests (bodies, query parameters) and writing bridge responses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from triggerfish.bridge import formats
from triggerfish.bridge.errors import unsupported_body, validation
from triggerfish.bridge.formats import APPLICATION_JSON, V2_JSON

#: The content types of control-plane bodies (subscriptions, offsets, ...).
CONTROL_TYPES = (V2_JSON, APPLICATION_JSON)


def json_response(obj: Any, status: int = 200, media_type: str = V2_JSON) -> Response:
    return Response(formats.dumps(obj), status_code=status, media_type=media_type)


def empty(status: int = 204) -> Response:
    return Response(status_code=status)


async def read_body(request: Request, allowed: tuple[str, ...] = CONTROL_TYPES, required: bool = True) -> bytes:
    """The body; one in a content type not ``allowed`` is refused (an empty optional body is not checked)."""
    body = await request.body()
    if body.strip() or required:
        if formats.media_type(request.headers.get("content-type")) not in allowed:
            raise unsupported_body()
    return body


def int_param(raw: str | None, name: str, default: int | None = None) -> int | None:
    """A query parameter as an integer, ``default`` when absent."""
    if raw is None:
        return default
    return _int(raw, name)


def path_int(request: Request, name: str) -> int:
    """A path parameter as an integer."""
    return _int(request.path_params[name], name)


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise validation([f"Parameter '{name}': {raw!r} is not an integer"]) from None


def bool_param(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise validation([f"Parameter '{name}': {raw!r} is not a boolean"])
