"""CORS for function URLs, from ``FunctionUrlConfig.Cors`` (AllowOrigins, AllowMethods,
AllowHeaders, ExposeHeaders, AllowCredentials, MaxAge).

As with Lambda, a configured URL answers preflight requests itself without invoking the function,
and on other responses its own ``Access-Control-*`` headers replace any the function returned.
Pure functions over header lists.
"""

from __future__ import annotations

from typing import Any


def _allowed_origin(cors: dict[str, Any], origin: str) -> str | None:
    origins = cors.get("AllowOrigins") or []
    if "*" in origins:
        # a credentialed response must name the origin, never "*"
        return origin if cors.get("AllowCredentials") else "*"
    return origin if origin in origins else None


def allows(cors: dict[str, Any] | None, origin: str) -> bool:
    """Whether a URL with this ``Cors`` configuration (None: no CORS) lets ``origin`` call it."""
    return bool(cors) and _allowed_origin(cors or {}, origin) is not None


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def preflight_headers(cors: dict[str, Any], headers: dict[str, str]) -> list[tuple[str, str]]:
    """Headers answering a preflight; empty when the origin or method is not allowed."""
    allow = _allowed_origin(cors, headers["origin"])
    method = headers["access-control-request-method"].upper()
    methods = [m.upper() for m in cors.get("AllowMethods") or []]
    if allow is None or not ("*" in methods or method in methods):
        return []
    out = [("access-control-allow-origin", allow), ("access-control-allow-methods", ", ".join(methods))]
    if cors.get("AllowHeaders"):
        out.append(("access-control-allow-headers", ", ".join(cors["AllowHeaders"])))
    if cors.get("AllowCredentials"):
        out.append(("access-control-allow-credentials", "true"))
    if cors.get("MaxAge") is not None:
        out.append(("access-control-max-age", str(cors["MaxAge"])))
    if allow != "*":
        out.append(("vary", "Origin"))
    return out


def apply(cors: dict[str, Any], origin: str | None, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The function's response headers with its CORS headers replaced by the URL's."""
    kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
    allow = _allowed_origin(cors, origin) if origin else None
    if allow is None:
        return kept
    kept.append(("access-control-allow-origin", allow))
    if cors.get("ExposeHeaders"):
        kept.append(("access-control-expose-headers", ", ".join(cors["ExposeHeaders"])))
    if cors.get("AllowCredentials"):
        kept.append(("access-control-allow-credentials", "true"))
    if allow != "*":
        kept.append(("vary", "Origin"))
    return kept
