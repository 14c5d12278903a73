"""Function names as Lambda accepts them: a name, a partial ARN or a full ARN, with a qualifier."""

from __future__ import annotations

import re
from dataclasses import dataclass

from triggerfish.errors import InvalidParameterError, NotFoundError

# name | account:function:name | arn:aws:lambda:region:account:function:name, each with an optional :qualifier
_NAME_RE = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"|(?P<paccount>\d{12}):function:)?"
    r"(?P<name>[a-zA-Z0-9_-]{1,64})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
)


@dataclass(frozen=True)
class _FunctionRef:
    name: str
    qualifier: str | None
    region: str | None
    account: str | None


def parse_function_name(value: str, qualifier: str | None = None) -> _FunctionRef:
    """Split what a client sent as FunctionName; a malformed value is InvalidParameterError."""
    match = _NAME_RE.match(value or "")
    if not match:
        raise InvalidParameterError(
            "",
            f"Invalid FunctionName '{value[:100]}': use a function name, a partial ARN "
            "(123456789012:function:NAME) or a full ARN, optionally with ':$LATEST'."
        )
    found = match["qualifier"]
    if found and qualifier and found != qualifier:
        raise InvalidParameterError("", "The derived qualifier from the function name does not match the specified qualifier.")
    return _FunctionRef(
        name=match["name"],
        qualifier=found or qualifier,
        region=match["region"],
        account=match["account"] or match["paccount"],
    )


def check_latest(ref: _FunctionRef, arn: str) -> None:
    """triggerfish runs only the unpublished version; other qualifiers do not exist."""
    if ref.qualifier not in (None, "$LATEST"):
        raise NotFoundError(f"Function not found: {arn}:{ref.qualifier}", f"{arn}:{ref.qualifier}")


def function_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def mapping_arn(region: str, account: str, uuid: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}"
