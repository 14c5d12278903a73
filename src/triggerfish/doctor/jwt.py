"""Decode a JWT's claims offline (no signature check): enough to diagnose an IRSA or Pod Identity token."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any


class TokenError(ValueError):
    """The text is not a JWT; the message says which part is wrong (never the token itself)."""


@dataclass(frozen=True)
class Claims:
    iss: str = ""
    sub: str = ""
    aud: tuple[str, ...] = ()
    exp: int | None = None
    iat: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def expired(self, now: float | None = None, skew: int = 60) -> bool:
        return self.exp is not None and self.exp + skew < (time.time() if now is None else now)

    @property
    def issuer_path(self) -> str:
        """The issuer as IAM writes it in provider ARNs and condition keys: without ``https://``."""
        return self.iss.removeprefix("https://").rstrip("/")

    def summary(self) -> str:
        left = ""
        if self.exp is not None:
            secs = int(self.exp - time.time())
            left = f"expires in {secs // 3600}h{secs % 3600 // 60:02d}m" if secs > 0 else f"expired {-secs}s ago"
        return f"iss={self.iss} sub={self.sub} aud={','.join(self.aud)} {left}".strip()


def decode(token: str) -> Claims:
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenError(f"a JWT has 3 dot-separated parts, this has {len(parts)}")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError(f"the payload (second part) is not base64url JSON: {exc.__class__.__name__}") from None
    if not isinstance(payload, dict):
        raise TokenError("the payload is not a JSON object")
    aud = payload.get("aud", [])
    return Claims(
        iss=str(payload.get("iss", "")),
        sub=str(payload.get("sub", "")),
        aud=tuple(aud) if isinstance(aud, list) else (str(aud),),
        exp=int(payload["exp"]) if isinstance(payload.get("exp"), (int, float)) else None,
        iat=int(payload["iat"]) if isinstance(payload.get("iat"), (int, float)) else None,
        raw=payload,
    )
