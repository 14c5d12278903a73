"""A request's query parameters, parsed once per distinct query string rather than once per request.

A client polls with the same query (``timeout=1000``) thousands of times a second; ``QueryParams`` is
immutable, so the parsed form is shared between requests.
"""

from __future__ import annotations

from functools import lru_cache

from starlette.datastructures import QueryParams
from starlette.requests import Request


def query_params(request: Request) -> QueryParams:
    """``request.query_params``, from a bounded cache of recent query strings."""
    return _parse(request.scope["query_string"])


@lru_cache(maxsize=256)
def _parse(query_string: bytes) -> QueryParams:
    return QueryParams(query_string)
