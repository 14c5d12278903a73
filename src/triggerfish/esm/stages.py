"""The setup stages a Kafka mapping goes through before its first invoke, each checked and timed.

    credentials → secret → dns → tcp → tls → sasl → topic → group → first_poll → first_invoke

DNS, TCP and TLS are probed per bootstrap host with the standard library, outside librdkafka, because
librdkafka prints one message for an unknown CA, a wrong host name and an expired certificate; Python's
``ssl`` tells them apart. SASL, topic and group are checked through librdkafka (an AdminClient: it
never joins the group, so a running consumer is not disturbed). ``first_poll`` and ``first_invoke``
are recorded by whoever polls and invokes (the engine), with :func:`result`.

Inputs are plain (bootstrap list, librdkafka config, topic, group id) or a MappingConfig-like object,
so ``triggerfish doctor kafka`` runs the same checks per broker. Outputs are :class:`StageResult`s.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets as _random
import socket
import ssl
import struct
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from triggerfish.checks import Check, Status
from triggerfish.errors import ConfigError, SetupError
from triggerfish.esm import auth, problems

STAGES = ("credentials", "secret", "dns", "tcp", "tls", "sasl", "topic", "group", "first_poll", "first_invoke")

DEFAULT_TIMEOUT_S = 5.0
KAFKA_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class StageResult(Check):
    """One stage's outcome for one target (a broker ``host:port``, a secret, the cluster), with its duration."""

    duration_ms: float = 0.0
    code: str = ""

    def error(self) -> SetupError:
        return problems.setup_error(self.stage, problems.Diagnosis(self.problem, self.detail, self.fix, self.code))


def result(
    stage: str, target: str, started: float, diagnosis: problems.Diagnosis | None = None, *,
    status: Status | None = None, detail: str = "",
) -> StageResult:
    """A StageResult timed from ``started`` (a ``time.monotonic()`` value); failed when a diagnosis is given."""
    ms = round((time.monotonic() - started) * 1000, 1)
    if diagnosis is None:
        return StageResult(stage, target, status or "ok", detail=detail, duration_ms=ms)
    return StageResult(
        stage, target, status or "fail", diagnosis.problem, diagnosis.detail, diagnosis.fix, ms, diagnosis.code
    )


def first_failure(results: list[StageResult]) -> StageResult | None:
    return next((r for r in results if r.failed), None)


def split_hostport(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", f"{server!r} is not host:port")
    return host, int(port)


# --- credentials and secrets -------------------------------------------------------------------------


def check_credentials(access: auth.Access) -> StageResult:
    """Are AWS credentials usable (STS GetCallerIdentity)? Skipped when nothing needs AWS."""
    started = time.monotonic()
    if not access.needs_aws:
        return result("credentials", "aws", started, status="skip", detail="no AWS secret or MSK cluster used")
    import boto3
    import botocore.exceptions

    try:
        # a fresh session: credentials may have been fixed since the last attempt (the default one caches them)
        session = boto3.session.Session()
        identity = session.client("sts", region_name=access.region or session.region_name or "us-east-1").get_caller_identity()
    except botocore.exceptions.NoCredentialsError as exc:
        return result("credentials", "aws", started, problems.no_credentials(str(exc)))
    except botocore.exceptions.EndpointConnectionError as exc:
        d = problems.Diagnosis(
            problems.CONNECTION_ERROR_VPC, f"cannot reach STS: {exc}",
            "let this machine reach sts.<region>.amazonaws.com (PrivateLink endpoint or NAT), or set AWS_ENDPOINT_URL_STS",
            "EndpointConnectionError",
        )
        return result("credentials", "aws", started, d)
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        d = problems.Diagnosis(
            problems.ASSUME_ROLE, f"STS GetCallerIdentity answered {err.get('Code')}: {err.get('Message')}",
            "check the credentials (expired session? wrong profile?) and the role's trust policy", str(err.get("Code", "")),
        )
        return result("credentials", "aws", started, d)
    except botocore.exceptions.BotoCoreError as exc:  # partial credentials, TLS to the endpoint, ...
        d = problems.Diagnosis(problems.ASSUME_ROLE, f"AWS credentials could not be used: {exc}",
                               "check the AWS credential chain (`triggerfish doctor aws-credentials` shows each source)", type(exc).__name__)
        return result("credentials", "aws", started, d)
    return result("credentials", "aws", started, detail=f"as {identity.get('Arn', '?')}")


def check_secrets(mapping: Any, access: auth.Access) -> tuple[list[StageResult], auth.Auth | None]:
    """Fetch and check every secret, then build the librdkafka config (one result per secret)."""
    results: list[StageResult] = []
    loaded: dict[str, dict[str, Any]] = {}
    for kind, ref in access.secrets.items():
        started = time.monotonic()
        try:
            loaded[kind] = auth.load_secret(kind, ref)
        except SetupError as exc:
            results.append(_from_error(exc, ref, started))
            return results, None
        results.append(result("secret", ref, started, detail=kind))
    started = time.monotonic()
    try:
        bootstrap = auth.bootstrap_servers(mapping)
        if not bootstrap and access.msk_arn:
            bootstrap, access = auth.msk_bootstrap(access)
        built = auth.build(bootstrap, access, loaded)
    except SetupError as exc:
        # PEM and key checks happen while building; blame the secret that held the bad material.
        target = next((r for k, r in access.secrets.items() if k in exc.detail), "secret")
        results = [r for r in results if r.target != target]
        results.append(_from_error(exc, target, started))
        return results, None
    if not access.secrets:
        results.append(result("secret", "-", started, status="skip", detail="no secret configured"))
    for d in auth.lambda_parity(built):
        results.append(result("secret", "lambda-parity", started, d, status="warn"))
    return results, built


def _from_error(exc: SetupError, target: str, started: float) -> StageResult:
    d = getattr(exc, "diagnosis", None) or problems.Diagnosis(exc.problem, exc.detail, exc.fix)
    return result(exc.stage, target, started, d)


# --- DNS and TCP ---------------------------------------------------------------------------------------


def check_dns(host: str, port: int) -> tuple[StageResult, list[str]]:
    """Resolve one broker host; returns the result and its addresses."""
    started = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return result("dns", f"{host}:{port}", started, problems.unresolvable(host, port, exc.strerror or str(exc))), []
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    return result("dns", f"{host}:{port}", started, detail=", ".join(addresses)), addresses


def check_tcp(host: str, port: int, addresses: list[str], timeout: float = DEFAULT_TIMEOUT_S) -> StageResult:
    """Connect to the first address that answers (as librdkafka's use_all_dns_ips does)."""
    started = time.monotonic()
    error: OSError | None = None
    tried = addresses or [host]
    for address in tried:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return result("tcp", f"{host}:{port}", started, detail=f"connected to {address}")
        except OSError as exc:
            error = exc
    return result("tcp", f"{host}:{port}", started, problems.tcp_failed(host, port, tried[-1], error or OSError(), timeout))


# --- TLS ----------------------------------------------------------------------------------------------


def check_tls(host: str, port: int, config: dict[str, Any], address: str | None = None,
              timeout: float = DEFAULT_TIMEOUT_S) -> StageResult:
    """Handshake with the broker as librdkafka would (same CA, client cert and host name check), then ask
    ApiVersions so a TLS 1.3 broker that rejects the client certificate gets to say so."""
    started = time.monotonic()
    target = f"{host}:{port}"
    if str(config.get("security.protocol", "PLAINTEXT")).upper() not in ("SSL", "SASL_SSL"):
        return _check_plaintext(host, port, address, timeout, started)
    has_client_cert = bool(config.get("ssl.certificate.pem") or config.get("ssl.certificate.location"))
    handshaken = False  # a peer that hangs up before its ServerHello is no TLS listener; after it, it refused us
    try:
        with _client_context(config) as ctx:
            with socket.create_connection((address or host, port), timeout=timeout) as raw:
                with ctx.wrap_socket(raw, server_hostname=host) as tls:
                    handshaken = True
                    version = tls.version() or "TLS"
                    _api_versions(tls)
    except ssl.SSLCertVerificationError as exc:
        return result("tls", target, started, _server_cert_diagnosis(host, port, exc, config, address, timeout))
    except ssl.SSLError as exc:
        reason = exc.reason or ""
        if "ALERT" in reason or (handshaken and reason == "UNEXPECTED_EOF_WHILE_READING"):
            return result("tls", target, started, problems.client_cert_rejected(target, reason, has_client_cert))
        if reason in ("WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING", "RECORD_LAYER_FAILURE"):
            return result("tls", target, started, problems.not_tls(host, port, reason))
        return result("tls", target, started, problems.Diagnosis(
            problems.TLS_AUTHENTICATION, f"{target}: TLS failed: {reason or exc}", "check the listener's TLS settings", reason,
        ))
    except _NotKafka as exc:
        return result("tls", target, started, problems.not_kafka(host, port, str(exc)))
    except (ConnectionResetError, BrokenPipeError) as exc:
        if handshaken:
            d = problems.client_cert_rejected(target, "", has_client_cert)
        else:
            d = problems.not_tls(host, port, exc.strerror or type(exc).__name__)
        return result("tls", target, started, d)
    except OSError as exc:
        return result("tls", target, started, problems.tcp_failed(host, port, address or host, exc, timeout))
    except ValueError as exc:  # unusable key material handed to ssl
        return result("tls", target, started, problems.Diagnosis(
            problems.INVALID_CERTIFICATE, f"{target}: the client certificate or key cannot be loaded ({exc})",
            "check the CLIENT_CERTIFICATE_TLS_AUTH secret", "InvalidKey"))
    detail = f"{version}, certificate verified" + (" (host name not checked)" if not _verify_hostname(config) else "")
    return result("tls", target, started, detail=detail)


def _check_plaintext(host: str, port: int, address: str | None, timeout: float, started: float) -> StageResult:
    """No TLS configured: make sure the port answers Kafka in plaintext (a TLS listener hangs up at once)."""
    target = f"{host}:{port}"
    try:
        with socket.create_connection((address or host, port), timeout=timeout) as raw:
            _api_versions(raw)
    except _NotKafka as exc:
        return result("tls", target, started, problems.not_kafka(host, port, str(exc)))
    except TimeoutError:
        return result("tls", target, started, problems.not_kafka(host, port, f"no answer to ApiVersions within {timeout:g}s"))
    except OSError as exc:
        d = problems.Diagnosis(
            problems.CONNECTION_ERROR,
            f"{target} hung up on a plaintext Kafka request ({exc.strerror or exc or type(exc).__name__}): it is probably a "
            "TLS or SASL_SSL listener",
            "add the listener's login (BASIC_AUTH / SASL_SCRAM_*_AUTH / CLIENT_CERTIFICATE_TLS_AUTH) or, for TLS "
            "without a login, a SERVER_ROOT_CA_CERTIFICATE secret; or use the broker's PLAINTEXT port",
            "_TRANSPORT",
        )
        return result("tls", target, started, d)
    return result("tls", target, started, status="skip", detail="no TLS (PLAINTEXT); Kafka answered ApiVersions")


def _verify_hostname(config: dict[str, Any]) -> bool:
    return str(config.get("ssl.endpoint.identification.algorithm", "https")).lower() != "none"


@contextmanager
def _client_context(config: dict[str, Any]) -> Iterator[ssl.SSLContext]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = _verify_hostname(config)
    if config.get("enable.ssl.certificate.verification", True) in (False, "false"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if config.get("ssl.ca.pem"):
        ctx.load_verify_locations(cadata=str(config["ssl.ca.pem"]))
    elif config.get("ssl.ca.location") and config["ssl.ca.location"] != "probe":
        ctx.load_verify_locations(cafile=str(config["ssl.ca.location"]))
    else:
        ctx.load_default_certs()
    if config.get("ssl.certificate.location") and config.get("ssl.key.location"):
        ctx.load_cert_chain(config["ssl.certificate.location"], config["ssl.key.location"], config.get("ssl.key.password"))
        yield ctx
    elif config.get("ssl.certificate.pem") and config.get("ssl.key.pem"):
        # Python's ssl loads keys from files only: write the key re-encrypted under a one-time password,
        # so the plain key never touches the disk, and delete it as soon as it is loaded.
        from cryptography.hazmat.primitives import serialization

        password = config.get("ssl.key.password")
        key = serialization.load_pem_private_key(
            str(config["ssl.key.pem"]).encode(), password.encode() if password else None
        )
        once = _random.token_urlsafe(24)
        sealed = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(once.encode()),
        )
        fd, path = tempfile.mkstemp(prefix="tf-key-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(str(config["ssl.certificate.pem"]).encode() + b"\n" + sealed)
            ctx.load_cert_chain(path, password=once)
        finally:
            os.unlink(path)
        yield ctx
    else:
        yield ctx


def _server_cert_diagnosis(host: str, port: int, exc: ssl.SSLCertVerificationError, config: dict[str, Any],
                           address: str | None, timeout: float) -> problems.Diagnosis:
    info = peer_certificate(address or host, port, host, timeout)
    if config.get("ssl.ca.pem"):
        ca_source = "the SERVER_ROOT_CA_CERTIFICATE secret"
    elif config.get("ssl.ca.location") and config["ssl.ca.location"] != "probe":
        ca_source = str(config["ssl.ca.location"])
    else:
        ca_source = "the system trust store"
    return problems.server_cert_rejected(
        host, port, exc.verify_code, exc.verify_message or str(exc.reason), ca_source=ca_source, **info,
    )


def peer_certificate(address: str, port: int, host: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """Fetch the broker's certificate without verifying it, to say what is in it."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError:
        return {}
    if not der:
        return {}
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names = [str(cns[0].value)] if cns else []
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {
        "cert_names": names,
        "issuer": str(issuer[0].value) if issuer else cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC"),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M UTC"),
    }


_peer_certificate = peer_certificate  # the name `doctor kafka` first used


class _NotKafka(Exception):
    pass


def _api_versions(sock: socket.socket) -> None:
    """Send Kafka ApiVersions v0 and check a Kafka-shaped answer comes back (protocol, not policy)."""
    client_id = b"triggerfish-setup"
    correlation = 0x0D0A0D0A  # CR LF CR LF: a line-based server (HTTP) answers instead of waiting for more
    body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
    sock.sendall(struct.pack(">i", len(body)) + body)
    head = _read_exact(sock, 8)
    size, got = struct.unpack(">ii", head)
    if head[:4] == b"HTTP" or head.lower().startswith((b"<!doc", b"<html")):
        raise _NotKafka("it answered with HTTP")
    if got != correlation or not 0 < size < 1_000_000:
        text = head.decode("ascii", "replace")
        raise _NotKafka(f"it answered {text!r}..." if text.isprintable() else "its answer is not a Kafka response")


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("connection closed by the broker")
        data += chunk
    return data


# --- librdkafka: SASL, topic, group ----------------------------------------------------------------


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=50)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Probe:
    """A librdkafka AdminClient plus what it reported: errors (error_cb) and log lines."""

    client: Any
    errors: list[Any]
    log: _Collector
    config: dict[str, Any]


def _admin(config: dict[str, Any]) -> Probe:
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    collector = _Collector()
    # An unregistered logger (no parent, nothing kept in logging's registry after the probe is gone):
    # librdkafka's chatter is evidence for the detail, not for the user's log.
    logger = logging.Logger("triggerfish.esm.stages.rdkafka")
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    conf = {k: v for k, v in config.items() if k not in _CONSUMER_ONLY}
    conf.update({"error_cb": errors.append, "logger": logger, "allow.auto.create.topics": False,
                 "reconnect.backoff.max.ms": 2000})
    return Probe(AdminClient(conf), errors, collector, config)


_CONSUMER_ONLY = {
    "group.id", "auto.offset.reset", "enable.auto.commit", "enable.auto.offset.store", "session.timeout.ms",
    "max.poll.interval.ms", "isolation.level", "fetch.min.bytes", "fetch.wait.max.ms", "partition.assignment.strategy",
    "on_commit", "stats_cb", "group.instance.id", "enable.partition.eof", "fetch.max.bytes", "max.partition.fetch.bytes",
    "queued.min.messages", "queued.max.messages.kbytes", "group.protocol", "heartbeat.interval.ms",
}


def _login_diagnosis(a: Probe, target: str, who: auth.Auth | None) -> problems.Diagnosis | None:
    """The first setup-relevant error librdkafka reported, as a diagnosis."""
    mechanism = who.mechanism if who else str(a.config.get("sasl.mechanism") or a.config.get("sasl.mechanisms") or "")
    user = who.user if who else str(a.config.get("sasl.username") or "")
    for err in a.errors:
        d = problems.from_kafka_error(err.name(), err.str(), target=target, mechanism=mechanism, user=user)
        if d is not None:
            return d
    return None


def check_sasl(config: dict[str, Any], target: str, who: auth.Auth | None = None,
               timeout: float = KAFKA_TIMEOUT_S) -> tuple[StageResult, Probe | None]:
    """Log in (metadata request through librdkafka); returns the admin client for the next stages."""
    started = time.monotonic()
    a = _admin(config)
    protocol = str(config.get("security.protocol", "PLAINTEXT")).upper()
    deadline = started + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            a.client.list_topics(timeout=1.0)
        except Exception as exc:  # KafkaException: the cause arrives separately through error_cb
            last = str(exc)
            a.client.poll(0.2)
            d = _login_diagnosis(a, target, who)
            if d is not None and (d.problem != problems.CONNECTION_ERROR or time.monotonic() > deadline - 1):
                return result("sasl", target, started, d), None
            continue
        mech = config.get("sasl.mechanism") or config.get("sasl.mechanisms")
        if protocol.startswith("SASL"):
            user = f" as {who.user!r}" if who and who.user else ""
            return result("sasl", target, started, detail=f"{mech} login{user} accepted"), a
        return result("sasl", target, started, status="skip", detail=f"no SASL ({protocol}); connected"), a
    d = _login_diagnosis(a, target, who) or problems.Diagnosis(
        problems.CONNECTION_ERROR,
        f"{target}: no metadata within {timeout:g}s: {problems.clean(last) or 'no answer'}"
        + (f"; client log: {problems.clean(a.log.lines[-1])}" if a.log.lines else ""),
        "check that the bootstrap servers are Kafka listeners of the configured security protocol, and that the "
        "brokers' advertised addresses are reachable from here",
        "_TRANSPORT",
    )
    return result("sasl", target, started, d), None


def _describe_failed(err: Any, what: str, fix: str, target: str, topic: str, group: str,
                     principal: str) -> problems.Diagnosis:
    """A Describe call failed for a reason other than a missing resource or a missing ACL."""
    return problems.from_kafka_error(err.name(), err.str(), target=target, topic=topic, group=group,
                                     principal=principal) or problems.Diagnosis(
        problems.CONNECTION_ERROR, f"{target}: describing {what} failed: {err.str()}", fix, err.name())


def _read_denied(ops: Any) -> bool:
    """The broker reported the principal's operations (KIP-430) and Read is not among them."""
    from confluent_kafka.admin import AclOperation

    return ops is not None and AclOperation.READ not in ops and AclOperation.ALL not in ops


def check_topic(a: Probe, target: str, topic: str, group: str = "", principal: str = "",
                timeout: float = KAFKA_TIMEOUT_S) -> StageResult:
    """The topic exists and the principal may Describe and Read it."""
    from confluent_kafka import KafkaError, KafkaException, TopicCollection

    started = time.monotonic()
    try:
        futures = a.client.describe_topics(
            TopicCollection([topic]), request_timeout=timeout, include_authorized_operations=True
        )
        description = futures[topic].result(timeout=timeout + 1)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return result("topic", topic, started, problems.topic_missing(target, topic))
        if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            return result("topic", topic, started, problems.topic_denied(target, topic, group, principal, "Describe"))
        return result("topic", topic, started, _describe_failed(
            err, f"topic {topic!r}", "check the broker's health and the mapping's Topics", target, topic, group, principal))
    if _read_denied(description.authorized_operations):
        return result("topic", topic, started, problems.topic_denied(target, topic, group, principal, "Read"))
    partitions = len(description.partitions)
    return result("topic", topic, started, detail=f"{partitions} partition{'s' if partitions != 1 else ''}")


def _describe_group(a: Probe, group: str, timeout: float) -> Any:
    """DescribeConsumerGroups, asked again while the group coordinator is still being elected.

    A new cluster has no coordinator until ``__consumer_offsets`` exists (the first group request
    creates it), and one moves when its broker restarts; both clear within seconds.
    """
    from confluent_kafka import KafkaError, KafkaException

    moving = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
    deadline = time.monotonic() + timeout
    while True:
        futures = a.client.describe_consumer_groups([group], request_timeout=timeout, include_authorized_operations=True)
        try:
            return futures[group].result(timeout=timeout + 1)
        except KafkaException as exc:
            if exc.args[0].code() not in moving or time.monotonic() + 0.5 > deadline:
                raise
        time.sleep(0.5)


def check_group(a: Probe, target: str, group: str, topic: str = "", principal: str = "",
                timeout: float = KAFKA_TIMEOUT_S) -> StageResult:
    """The principal may Read (join) the consumer group; checked without joining it."""
    from confluent_kafka import KafkaError, KafkaException

    started = time.monotonic()
    try:
        description = _describe_group(a, group, timeout)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        if err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            return result("group", group, started, problems.group_denied(target, topic, group, principal, "Describe/Read"))
        return result("group", group, started, _describe_failed(
            err, f"consumer group {group!r}", "check the broker's group coordinator", target, topic, group, principal))
    if _read_denied(description.authorized_operations):
        return result("group", group, started, problems.group_denied(target, topic, group, principal, "Read"))
    state = getattr(description.state, "name", str(description.state))
    if state == "DEAD":
        return result("group", group, started, detail="Read allowed; the group does not exist yet (the first join creates it)")
    return result("group", group, started, detail=f"Read allowed; state {state}, {len(description.members)} member(s)")


# --- whole runs ----------------------------------------------------------------------------------------


def check_advertised(a: Probe, bootstrap: list[str], config: dict[str, Any], timeout: float = DEFAULT_TIMEOUT_S,
                     kafka_timeout: float = KAFKA_TIMEOUT_S) -> list[StageResult]:
    """DNS, TCP and TLS for every broker the cluster advertises that is not a bootstrap server.

    After bootstrap, clients talk to the addresses brokers advertise (``advertised.listeners``);
    a name only resolvable inside the cluster's network fails here, not at bootstrap.
    """
    try:
        brokers = a.client.list_topics(timeout=kafka_timeout).brokers
    except Exception:  # noqa: BLE001 - metadata just worked in the sasl stage; the topic stage will say more
        return []
    known = {server.strip().lower() for server in bootstrap}
    results: list[StageResult] = []
    for broker_id, b in sorted(brokers.items()):
        server = f"{b.host}:{b.port}"
        if server.lower() in known:
            continue
        for r in check_broker(server, config, timeout):
            note = f"broker {broker_id} advertises {server}"
            fix = f"{r.fix}; or correct advertised.listeners of broker {broker_id}" if r.failed else r.fix
            results.append(dataclasses.replace(r, detail=f"{note}: {r.detail}", fix=fix))
            if r.failed:
                return results
    return results


def check_lambda_parity(a: Probe, target: str, principal: str, login: str) -> StageResult | None:
    """Lambda also wants DescribeConfigs on the cluster for SCRAM and mTLS logins; triggerfish does not.

    A warning, so a mapping that works here does not meet ``Cluster failed to authorize Lambda`` on AWS.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType

    if login not in ("SASL_SCRAM_256_AUTH", "SASL_SCRAM_512_AUTH", "CLIENT_CERTIFICATE_TLS_AUTH"):
        return None
    started = time.monotonic()
    try:
        brokers = a.client.list_topics(timeout=KAFKA_TIMEOUT_S).brokers
        resource = ConfigResource(ResourceType.BROKER, str(min(brokers)))
        for future in a.client.describe_configs([resource], request_timeout=KAFKA_TIMEOUT_S).values():
            future.result(timeout=KAFKA_TIMEOUT_S + 1)
    except KafkaException as exc:
        err = exc.args[0]
        if err.code() != KafkaError.CLUSTER_AUTHORIZATION_FAILED:
            return None
        d = problems.Diagnosis(
            problems.AUTHORIZATION,
            f"{target}: {principal or 'the principal'} lacks DescribeConfigs on the cluster; triggerfish does not "
            "need it, but Lambda does for SCRAM and mTLS logins",
            problems.acl_fix(principal, cluster=True) + " before moving this mapping to AWS Lambda",
            err.name(),
        )
        return result("group", "cluster", started, d, status="warn")
    except Exception:  # noqa: BLE001 - best effort: a warning only
        return None
    return None


def check_broker(server: str, config: dict[str, Any], timeout: float = DEFAULT_TIMEOUT_S) -> list[StageResult]:
    """DNS, TCP and TLS for one ``host:port``; stops at the first failure."""
    host, port = split_hostport(server)
    dns, addresses = check_dns(host, port)
    if dns.failed:
        return [dns]
    tcp = check_tcp(host, port, addresses, timeout)
    if tcp.failed:
        return [dns, tcp]
    address = tcp.detail.rsplit(" ", 1)[-1]
    return [dns, tcp, check_tls(host, port, config, address, timeout)]


def check_cluster(
    bootstrap: list[str], config: dict[str, Any], topic: str, group: str, *,
    who: auth.Auth | None = None, timeout: float = DEFAULT_TIMEOUT_S, kafka_timeout: float = KAFKA_TIMEOUT_S,
    on_result: Callable[[StageResult], None] | None = None,
) -> list[StageResult]:
    """Every stage from DNS to group for a cluster; stops at the first failure (later stages are skipped)."""
    run = _Run(on_result)
    if not _cluster_stages(run, bootstrap, config, topic, group, who, timeout, kafka_timeout):
        run.stop()
    return run.results


def check_mapping(
    mapping: Any, group: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
    kafka_timeout: float = KAFKA_TIMEOUT_S, on_result: Callable[[StageResult], None] | None = None,
) -> tuple[list[StageResult], auth.Auth | None]:
    """All stages up to (not including) the first poll for a MappingConfig-like object.

    Returns the results and, when the secret stage passed, the resolved :class:`auth.Auth`
    (its ``config`` is what the consumer should use).
    """
    run = _Run(on_result)
    access = auth.parse_access(mapping)
    if not run.add(check_credentials(access)):
        return run.stop(), None
    secret_results, who = check_secrets(mapping, access)
    for r in secret_results:
        if not run.add(r):
            return run.stop(), None
    assert who is not None
    if not _cluster_stages(run, who.bootstrap, who.config, _topic_of(mapping), group or _group_of(mapping), who,
                           timeout, kafka_timeout):
        run.stop()
    return run.results, who


def _cluster_stages(run: _Run, bootstrap: list[str], config: dict[str, Any], topic: str, group: str,
                    who: auth.Auth | None, timeout: float, kafka_timeout: float) -> bool:
    """DNS to group, added to ``run``; False when a stage failed (the stages after it are not run)."""
    for server in bootstrap:
        for r in check_broker(server, config, timeout):
            if not run.add(r):
                return False
    target = ",".join(bootstrap)
    config = {**config, "bootstrap.servers": target}  # the servers checked above, whatever the config said
    principal = who.principal if who else auth.principal_of(config)
    sasl, a = check_sasl(config, target, who, kafka_timeout)
    if not run.add(sasl) or a is None:
        return False
    for r in check_advertised(a, bootstrap, config, timeout, kafka_timeout):
        if not run.add(r):
            return False
    if not run.add(check_topic(a, target, topic, group, principal, kafka_timeout)):
        return False
    if run.add(check_group(a, target, group, topic, principal, kafka_timeout)) and who is not None:
        parity = check_lambda_parity(a, target, principal, who.login)
        if parity is not None:
            run.add(parity)
    return True


class _Run:
    """The results of one run of setup stages, each passed to ``on_result`` as it comes."""

    def __init__(self, on_result: Callable[[StageResult], None] | None) -> None:
        self.results: list[StageResult] = []
        self._on_result = on_result

    def add(self, r: StageResult) -> bool:
        """Record ``r``; False when it failed and the run must stop."""
        self.results.append(r)
        if self._on_result:
            self._on_result(r)
        return not r.failed

    def stop(self) -> list[StageResult]:
        """Mark the stages after the failed one (up to ``group``; polling and invoking are the runner's) as
        skipped, so a report shows where the run stopped."""
        done = {r.stage for r in self.results}
        failed_at = STAGES.index(self.results[-1].stage) if self.results else -1
        for stage in STAGES[failed_at + 1: STAGES.index("group") + 1]:
            if stage not in done:
                self.add(StageResult(stage, "-", "skip", detail="not reached"))
        return self.results


def _topic_of(mapping: Any) -> str:
    topics = auth._get(mapping, "Topics") or []
    return str(list(topics)[0]) if topics else ""


def _group_of(mapping: Any) -> str:
    try:
        gid = getattr(mapping, "group_id", None)
    except ValueError:
        gid = None
    if gid:
        return str(gid)
    cfg = auth._get(mapping, "SelfManagedKafkaEventSourceConfig") or auth._get(mapping, "AmazonManagedKafkaEventSourceConfig") or {}
    return str(cfg.get("ConsumerGroupId") or auth._get(mapping, "UUID") or "")
