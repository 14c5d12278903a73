"""``doctor kafka --mapping``'s schema registry stage: the mapping's ``SchemaRegistryConfig`` registry is
reachable, accepts the credential from ``AccessConfigs``, and lets it read its subjects (Glue: schemas)."""

from __future__ import annotations

import time

from triggerfish.doctor.report import Check
from triggerfish.errors import SecretError
from triggerfish.esm.schema_records import Settings
from triggerfish.schemas import RegistryUnavailable, open_registry
from triggerfish.schemas.errors import MissingExtra, safe_url

STAGE = "schema_registry"
PROBLEM = "PROBLEM: Schema registry error."


def check_registry(settings: Settings) -> Check:
    """One row: ok with the number of readable subjects, or fail naming the registry and the fix."""
    target = safe_url(settings.uri)
    started = time.monotonic()
    try:
        registry = open_registry(settings.uri, settings.access_configs)
    except SecretError as exc:
        return Check.of(STAGE, target, "fail", PROBLEM, str(exc), "fix the AccessConfigs secret of SchemaRegistryConfig")
    except MissingExtra as exc:
        return Check.of(STAGE, target, "fail", PROBLEM, str(exc), "pip install 'triggerfish[schemas]'")
    try:
        subjects = registry.subjects()
    except RegistryUnavailable as exc:
        return Check.of(STAGE, target, "fail", PROBLEM, str(exc), _fix(str(exc)),
                        duration_ms=(time.monotonic() - started) * 1000)
    finally:
        registry.close()
    shown = ", ".join(subjects[:5]) + (", ..." if len(subjects) > 5 else "")
    return Check.of(STAGE, target, "ok", "",
                    f"reachable and authenticated; {len(subjects)} subject(s) readable" + (f": {shown}" if shown else ""),
                    duration_ms=(time.monotonic() - started) * 1000)


def _fix(message: str) -> str:
    if "HTTP 401" in message or "HTTP 403" in message or "AccessDenied" in message:
        return "correct the BASIC_AUTH / CLIENT_CERTIFICATE_TLS_AUTH secret, or grant it read access to the registry"
    return "start the registry or correct SchemaRegistryURI (and the network path to it)"
