"""A refused SASL login, told apart: a wrong user or password, or the right credentials with the wrong mechanism.

Kafka answers every refused SCRAM or PLAIN login with the same generic text, on purpose. When a login is
refused, the doctor logs in again with the same credentials through each other mechanism the broker
enables (librdkafka logs the SaslHandshake's list with ``debug=security``) and says which one works. A
SCRAM exchange never reveals the password, so SCRAM is always tried; PLAIN sends the password itself,
so it is tried only over TLS (SASL_SSL) or when the user already chose PLAIN.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from logging.handlers import BufferingHandler
from typing import Any

from triggerfish.doctor.report import Check
from triggerfish.esm import problems

MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")  # the user/password mechanisms librdkafka speaks
SECRET_TYPES = {"SCRAM-SHA-512": "SASL_SCRAM_512_AUTH", "SCRAM-SHA-256": "SASL_SCRAM_256_AUTH", "PLAIN": "BASIC_AUTH"}
_ENABLED = re.compile(r"Broker supported SASL mechanisms: ([A-Za-z0-9_,.-]+)")
_UNSUPPORTED = re.compile(r"supported mechanisms: ([A-Za-z0-9_, .-]+)")
_LOGIN_TIMEOUT_S = 5.0


@dataclass
class Login:
    """One login attempt: did it work, what the broker said, and which mechanisms it enables."""

    mechanism: str
    ok: bool
    error: str = ""
    enabled: list[str] = field(default_factory=list)


def try_login(config: Mapping[str, Any], mechanism: str, timeout: float = _LOGIN_TIMEOUT_S) -> Login:
    """Log in with ``config``'s credentials through ``mechanism`` (one metadata request)."""
    from confluent_kafka.admin import AdminClient

    lines = BufferingHandler(capacity=1000)  # never flushed: the records are read back below
    # An unregistered logger: librdkafka's debug output is evidence here, not for the user's log.
    logger = logging.Logger("triggerfish.doctor.sasl")
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    errors: list[Any] = []
    conf = {k: v for k, v in config.items()
            if k in ("bootstrap.servers", "security.protocol", "sasl.username", "sasl.password")
            or k.startswith("ssl.") or k == "enable.ssl.certificate.verification"}
    conf.update({"sasl.mechanism": mechanism, "debug": "security", "logger": logger, "error_cb": errors.append,
                 "reconnect.backoff.max.ms": 1000})
    client = AdminClient(conf)
    deadline = time.monotonic() + timeout
    ok, error = False, ""
    while time.monotonic() < deadline:
        try:
            client.list_topics(timeout=0.25)
            ok = True
            break
        except Exception:  # KafkaException; the cause arrives through error_cb
            client.poll(0.1)
        refused = next((e for e in errors if e.name() == "_AUTHENTICATION"), None)
        if refused is not None:
            error = problems.clean(refused.str())
            break
    if not ok and not error:
        error = problems.clean(errors[-1].str()) if errors else f"no answer within {timeout:g}s"
    return Login(mechanism, ok, error, _enabled([r.getMessage() for r in lines.buffer], error))


def _enabled(lines: list[str], error: str) -> list[str]:
    for line in lines:
        found = _ENABLED.search(line)
        if found:
            return [m.strip() for m in found.group(1).split(",") if m.strip()]
    found = _UNSUPPORTED.search(error)
    return [m.strip() for m in found.group(1).split(",") if m.strip()] if found else []


def explain_refusal(check: Check, config: Mapping[str, Any], timeout: float = _LOGIN_TIMEOUT_S) -> Check:
    """A failed sasl row, with which mechanism (if any) the same credentials work with."""
    mechanism = str(config.get("sasl.mechanism") or config.get("sasl.mechanisms") or "").upper()
    user = str(config.get("sasl.username") or "")
    if (check.stage != "sasl" or not check.failed or check.code != "_AUTHENTICATION" or mechanism not in MECHANISMS
            or not user or not config.get("sasl.password")):
        return check
    tls = str(config.get("security.protocol", "")).upper() == "SASL_SSL"
    enabled = _enabled([], check.detail)
    held_back = ""
    candidates = []
    for other in MECHANISMS:
        if other == mechanism or (enabled and other not in enabled):
            continue
        if other == "PLAIN" and not tls:
            held_back = "PLAIN not tried: it would send the password in clear over this non-TLS listener"
            continue
        candidates.append(other)
    # Side by side: each refused login costs the broker's failed-authentication delay.
    attempts: list[Login] = []
    pool = ThreadPoolExecutor(max_workers=max(1, len(candidates)))
    try:
        for done in as_completed([pool.submit(try_login, config, m, timeout) for m in candidates]):
            attempts.append(done.result())
            if attempts[-1].ok:
                break  # one working mechanism is the answer; a refused one still running adds nothing
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    enabled = enabled or next((a.enabled for a in attempts if a.enabled), [])
    works = next((a.mechanism for a in attempts if a.ok), "")
    # A mechanism the broker does not offer says nothing about the credentials.
    refused = {a.mechanism for a in attempts if not a.ok and (not a.enabled or a.mechanism in a.enabled)}
    tried = [m for m in MECHANISMS if m in refused]  # in one order, whichever login answered first
    offered = f" (the broker enables {', '.join(enabled)})" if enabled else ""
    unsupported = "Unsupported SASL mechanism" in check.detail
    if works:
        cause = "the broker does not enable it" if unsupported else "a mechanism mismatch, not a wrong password"
        return check.replace(
            detail=f"{check.detail}; the same credentials work with {works}{offered}: {mechanism} is wrong ({cause})",
            fix=f"the credentials work with {works}; set the SASL mechanism to {works} (secret type "
                f"{SECRET_TYPES[works]}, or sasl.mechanism={works})")
    if unsupported:
        usable = [m for m in enabled if m in MECHANISMS]
        why = (f"and the credentials were refused with {', '.join(tried)} too: wrong user or password"
               if tried else "which this client cannot use with a user name and password" if not usable else "")
        return check.replace(
            detail=f"{check.detail}; the broker does not enable {mechanism}{offered} {why}".rstrip()
                   + (f"; {held_back}" if held_back else ""),
            fix=f"use a mechanism the broker enables ({', '.join(enabled) or 'see its sasl.enabled.mechanisms'}) "
                f"with credentials created for it")
    if not tried:
        note = held_back or "no other user/password mechanism is enabled to compare with"
        return check.replace(detail=f"{check.detail}{offered}; {note}")
    return check.replace(
        detail=(f"{check.detail}; refused with {', '.join(tried)} too{offered}: the user name or password is wrong "
                "(Kafka does not say which), not the mechanism" + (f"; {held_back}" if held_back else "")),
        fix=(f"check the user name and password of {user!r}; or create the user's credentials on the cluster: "
             f"kafka-configs --alter --add-config '{mechanism}=[password=...]' --entity-type users "
             f"--entity-name {user}") if mechanism != "PLAIN" else
            f"check the user name and password of {user!r} (PLAIN users come from the broker's JAAS config or callback)")
