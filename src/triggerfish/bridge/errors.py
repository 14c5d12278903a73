"""Strimzi's error body ``{"error_code", "message"}``: the status each error class answers with, and Kafka's errors as classes.

Strimzi answers 500 for nearly every Kafka error. Here an authorization failure is a 403 naming the
principal, the resource and the ACL to add; an unreachable or refusing cluster is a 503 that says the
bridge's own credentials or network are at fault; a missing topic or partition is a 404. The status
comes from ``_STATUS``, keyed by ``triggerfish.errors`` classes and looked up along the error's MRO.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from starlette.responses import Response

from triggerfish.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    InvalidRequestError,
    KafkaClientError,
    NotAcceptableError,
    NotFoundError,
    RequestTooLargeError,
    ThrottledError,
    TriggerfishError,
    UnavailableError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)

V2_JSON = "application/vnd.kafka.v2+json"


class StrimziServerError(TriggerfishError):
    """A client's mistake that Strimzi answers with 500, and its clients (and tests) expect so: polling an
    instance with no subscription, a ``Forwarded`` proto that is not http(s), a producer config Kafka refuses."""

#: The HTTP status of each error class; an error whose MRO holds none of these is a bridge bug (500).
_STATUS: dict[type[TriggerfishError], int] = {
    InvalidRequestError: 400,
    AuthenticationError: 401,
    AccessDeniedError: 403,
    NotFoundError: 404,
    NotAcceptableError: 406,
    ConflictError: 409,
    RequestTooLargeError: 413,
    UnprocessableError: 422,
    KafkaClientError: 500,
    StrimziServerError: 500,
    UnavailableError: 503,
    ThrottledError: 503,
}


def status_of(exc: BaseException) -> int | None:
    """The status Strimzi answers ``exc`` with, or ``None`` when the bridge has no answer but a 500."""
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return None


def _error_body(status: int, message: str, validation_errors: Iterable[str] = ()) -> dict[str, object]:
    out: dict[str, object] = {"error_code": status, "message": message}
    errors = list(validation_errors)
    if errors:
        out["validation_errors"] = errors
    return out


def body_of(exc: TriggerfishError) -> dict[str, object]:
    """Strimzi's body for an error ``status_of`` knows; errors with Confluent's finer ``error_code`` give that."""
    body = _error_body(status_of(exc) or 500, str(exc), exc.errors if isinstance(exc, InvalidRequestError) else ())
    code = getattr(exc, "error_code", None)
    if isinstance(code, int):
        body["error_code"] = code
    return body


def encode(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def error_response(status: int, message: str, media_type: str = V2_JSON) -> Response:
    return Response(encode(_error_body(status, message)), status_code=status, media_type=media_type)


def response_of(exc: TriggerfishError, media_type: str = V2_JSON) -> Response:
    """``exc`` as the HTTP response Strimzi would give."""
    return Response(encode(body_of(exc)), status_code=status_of(exc) or 500, media_type=media_type)


def internal_error(operation: str, exc: BaseException) -> Response:
    """The 500 for a bug: names the operation and the exception type, never its text (it may hold secrets)."""
    return error_response(500, f"Internal error in {operation}: {type(exc).__name__}")


def validation(errors: list[str]) -> InvalidRequestError:
    return InvalidRequestError("Validation error on: Schema validation error", errors)


def unsupported_body() -> UnsupportedMediaTypeError:
    return UnsupportedMediaTypeError("Validation error on: The format of the request body is not supported")


@dataclass(frozen=True)
class Identity:
    """Who the bridge is to Kafka, to name the principal in 403 messages."""

    principal: str
    bootstrap: str

    @classmethod
    def from_config(cls, conf: Mapping[str, str]) -> Identity:
        protocol = conf.get("security.protocol", "PLAINTEXT").upper()
        bootstrap = conf.get("bootstrap.servers", "")
        if protocol.startswith("SASL"):
            user = conf.get("sasl.username")
            return cls(f"User:{user}" if user else "User:<your SASL user>", bootstrap)
        if protocol == "SSL" and ("ssl.certificate.pem" in conf or "ssl.certificate.location" in conf):
            return cls(_cert_principal(conf), bootstrap)
        return cls("User:ANONYMOUS", bootstrap)


def _cert_principal(conf: Mapping[str, str]) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        pem = conf.get("ssl.certificate.pem")
        if pem is None:
            with open(conf["ssl.certificate.location"], "rb") as f:
                data = f.read()
        else:
            data = pem.encode()
        cert = x509.load_pem_x509_certificate(data)
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cn:
            return f"User:{cn[0].value!s}"
        return f"User:{cert.subject.rfc4514_string()}"
    except Exception:
        return "User:<the client certificate's subject>"


_AUTHZ = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional-id",
}
_AUTHN = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL}
_UNAVAILABLE = {
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT, KafkaError._MSG_TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.BROKER_NOT_AVAILABLE, KafkaError._RESOLVE,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR, KafkaError._WAIT_COORD,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
}
_NOT_FOUND = {
    KafkaError.UNKNOWN_TOPIC_OR_PART: "The specified topic was not found.",
    KafkaError._UNKNOWN_TOPIC: "The specified topic was not found.",
    KafkaError._UNKNOWN_PARTITION: "The specified topic partition was not found.",
}
_UNPROCESSABLE = {
    KafkaError.TOPIC_EXCEPTION, KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD, KafkaError.INVALID_TIMESTAMP,
    KafkaError.OFFSET_OUT_OF_RANGE, KafkaError.INVALID_PARTITIONS, KafkaError.INVALID_REPLICATION_FACTOR,
    KafkaError.INVALID_CONFIG, KafkaError.INVALID_REQUEST, KafkaError.POLICY_VIOLATION,
    KafkaError.INVALID_REPLICA_ASSIGNMENT, KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
}


def from_kafka(err: KafkaError | KafkaException | BaseException, identity: Identity, operation: str,
               resource: str = "", group: str = "") -> TriggerfishError:
    """Turn a Kafka error into the error a client can act on.

    ``operation`` is the ACL operation the request needed on ``resource`` (a topic name) or on
    ``group`` (Read for consumer groups); they make the 403 message concrete.
    """
    if isinstance(err, TriggerfishError):
        return err
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        err = err.args[0]
    if not isinstance(err, KafkaError):
        return KafkaClientError(str(err) or type(err).__name__)
    code = err.code()
    text = err.str()
    if code in _AUTHZ:
        kind = _AUTHZ[code]
        if kind == "group":
            name, op = group or "<group>", "Read"
        elif kind == "cluster":
            name, op = "kafka-cluster", operation
        else:
            name, op = resource or _topic_in(text) or "<topic>", operation
        return AccessDeniedError(_authorization_message(identity, op, kind, name, text), identity.principal, op,
                                 f"{kind}:{name}")
    if code in _AUTHN:
        return credentials_rejected(identity, text)
    if code in _NOT_FOUND:
        return NotFoundError(_NOT_FOUND[code], resource)
    if code in _UNAVAILABLE:
        return UnavailableError(f"Kafka is not available to the bridge: {text}. Retry later; if it persists check "
                                f"that {identity.bootstrap} is reachable from the bridge.")
    if code in _UNPROCESSABLE:
        return UnprocessableError(text)
    if code == KafkaError.TOPIC_ALREADY_EXISTS:
        return ConflictError(text, resource)
    if code == KafkaError._INVALID_ARG:
        return UnprocessableError(text)
    if code == KafkaError._QUEUE_FULL:
        return UnavailableError("Bridge is overloaded, please retry later")
    return KafkaClientError(text, code)


def credentials_rejected(identity: Identity, reason: str) -> UnavailableError:
    """Kafka refuses the bridge's own credentials: not the client's fault, so a 503 that says whose it is."""
    return UnavailableError(f"Kafka rejected the bridge's own credentials ({reason}). The request is fine; "
                            f"fix the bridge's kafka.* security settings for {identity.principal}.")


def _authorization_message(identity: Identity, operation: str, kind: str, name: str, detail: str = "") -> str:
    flag = {"topic": "--topic", "group": "--group", "cluster": "--cluster", "transactional-id": "--transactional-id"}[kind]
    target = flag if kind == "cluster" else f"{flag} {name}"
    acl = (f"kafka-acls.sh --bootstrap-server {identity.bootstrap or '<bootstrap>'} --add "
           f"--allow-principal {identity.principal} --operation {operation} {target}")
    resource = "the cluster" if kind == "cluster" else f"{kind} '{name}'"
    return (f"Kafka denied {operation} on {resource} to principal {identity.principal}. "
            f"Add the ACL: {acl} (Strimzi KafkaUser: add operation {operation} on resource type {kind} name {name}).")


def _topic_in(text: str) -> str:
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else ""


def client_config_error(exc: KafkaException, origins: Mapping[str, str]) -> ConfigError:
    """A librdkafka configuration rejection as a ConfigError naming the user's own key."""
    text = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
    m = re.search(r'property:? "([^"]+)"', text)
    key = m.group(1) if m else ""
    return ConfigError(origins.get(key, f"kafka.{key}" if key else "kafka.*"), text)
