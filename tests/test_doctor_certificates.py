"""doctor kafka's certificate verdicts, against the real broker's mTLS listener and real TLS listeners.

Every bad certificate is built here with ``cryptography``. A Java broker answers every client certificate
it refuses with the same TLS alert (certificate_unknown), so these tests pin that the doctor still names
the reason: expired, not yet valid, serverAuth only, a CA the broker does not trust, a key that is not
the certificate's. And the broker's side: a certificate for client use only, an expired one.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from kafka_helpers import env_secret, pem
from test_doctor_kafka import KafkaTlsListener
from triggerfish.cli import app
from triggerfish.doctor import kafka as doctor
from triggerfish.doctor.report import exit_code
from triggerfish.localkafka import KafkaEnv
from triggerfish.localkafka.certs import issue, make_ca

pytestmark = pytest.mark.kafka

NOW = dt.datetime.now(dt.UTC)
CLIENT = [ExtendedKeyUsageOID.CLIENT_AUTH]
SERVER = [ExtendedKeyUsageOID.SERVER_AUTH]


def broker_ca(kafka: KafkaEnv) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The local broker's own CA (its truststore), to sign client certificates it would accept."""
    directory = Path(kafka.ca_file).parent
    key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())


def leaf(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], cn: str, usages: list[x509.ObjectIdentifier], *,
         not_before: dt.datetime = NOW - dt.timedelta(hours=1), not_after: dt.datetime = NOW + dt.timedelta(days=90),
         hosts: tuple[str, ...] = ()) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def write(tmp: Path, name: str, key: object, cert: object) -> tuple[Path, Path]:
    (tmp / f"{name}.pem").write_text(pem(cert))
    (tmp / f"{name}-key.pem").write_text(pem(key))
    return tmp / f"{name}.pem", tmp / f"{name}-key.pem"


def run_mtls(kafka: KafkaEnv, cert: Path, key: Path, topic: str = "") -> list:
    plan = doctor.plan_from_options([kafka.mtls_bootstrap], topic=topic, properties=[
        "security.protocol=SSL", f"ssl.ca.location={kafka.ca_file}",
        f"ssl.certificate.location={cert}", f"ssl.key.location={key}"])
    return doctor.diagnose(plan, poll=False)


def row(checks: list, stage: str):
    return next(c for c in checks if c.stage == stage)


def test_a_good_client_certificate_passes_with_its_facts(kafka: KafkaEnv, tmp_path: Path) -> None:
    cert, key = write(tmp_path, "good", *leaf(broker_ca(kafka), "doctor-good", CLIENT))
    checks = run_mtls(kafka, cert, key)
    assert exit_code(checks) == 0, checks
    client = row(checks, "certificates")
    assert client.status == "ok" and client.target == f"client certificate CN=doctor-good ({cert})"
    assert "issued by CN=triggerfish local CA" in client.detail and "EKU clientAuth" in client.detail
    assert "the private key belongs to it" in client.detail
    ca = [c for c in checks if c.stage == "certificates"][1]
    assert ca.target == f"CA CN=triggerfish local CA ({kafka.ca_file})" and ca.status == "ok"
    tls = row(checks, "tls")
    assert "presented chain: CN=localhost (issued by CN=triggerfish local CA; valid " in tls.detail


def test_expired_client_certificate_is_named_not_the_ca(kafka: KafkaEnv, tmp_path: Path) -> None:
    expired = NOW - dt.timedelta(days=2)
    cert, key = write(tmp_path, "old", *leaf(broker_ca(kafka), "doctor-old", CLIENT,
                                               not_before=NOW - dt.timedelta(days=40), not_after=expired))
    checks = run_mtls(kafka, cert, key, topic="t")
    local = row(checks, "certificates")
    assert local.status == "fail" and local.problem.startswith(f"the client certificate expired on {expired:%Y-%m-%d}")
    tls = row(checks, "tls")
    assert tls.status == "fail" and tls.code == "SSLV3_ALERT_CERTIFICATE_UNKNOWN"  # what the broker actually says
    assert f"the broker rejected our client certificate CN=doctor-old: it expired on {expired:%Y-%m-%d}" in tls.detail
    assert tls.fix.startswith("renew the client certificate") and "trust" not in tls.fix
    assert exit_code(checks) == 1


def test_not_yet_valid_client_certificate(kafka: KafkaEnv, tmp_path: Path) -> None:
    start = NOW + dt.timedelta(days=3)
    cert, key = write(tmp_path, "early", *leaf(broker_ca(kafka), "doctor-early", CLIENT, not_before=start,
                                                 not_after=NOW + dt.timedelta(days=60)))
    tls = row(run_mtls(kafka, cert, key), "tls")
    assert tls.status == "fail"
    assert f"rejected our client certificate CN=doctor-early: it is not valid before {start:%Y-%m-%d}" in tls.detail
    assert "clock" in tls.fix


def test_server_auth_only_client_certificate(kafka: KafkaEnv, tmp_path: Path) -> None:
    cert, key = write(tmp_path, "srv", *leaf(broker_ca(kafka), "doctor-srv", SERVER))
    checks = run_mtls(kafka, cert, key)
    assert row(checks, "certificates").problem == ("the client certificate cannot authenticate a TLS client: its "
                                                  "extended key usage is serverAuth only, without clientAuth")
    tls = row(checks, "tls")
    assert tls.status == "fail" and "serverAuth only, without clientAuth" in tls.detail
    assert "extendedKeyUsage clientAuth" in tls.fix


def test_client_certificate_from_a_ca_the_broker_does_not_trust(kafka: KafkaEnv, tmp_path: Path) -> None:
    cert, key = write(tmp_path, "foreign", *leaf(make_ca("doctor foreign CA"), "doctor-foreign", CLIENT))
    checks = run_mtls(kafka, cert, key)
    assert row(checks, "certificates").status == "ok"  # nothing wrong with the certificate itself
    tls = row(checks, "tls")
    assert tls.status == "fail"
    assert ("the broker does not trust the CA that issued our client certificate (CN=doctor foreign CA); it accepts "
            "client certificates from: CN=triggerfish local CA") in tls.detail
    assert tls.fix.startswith("add the CA CN=doctor foreign CA to the broker's ssl.truststore for this listener, or "
                              "use a client certificate issued by CN=triggerfish local CA")


def test_key_that_is_not_the_certificates(kafka: KafkaEnv, tmp_path: Path) -> None:
    ca = broker_ca(kafka)
    cert, _ = write(tmp_path, "mine", *leaf(ca, "doctor-mine", CLIENT))
    _, other_key = write(tmp_path, "other", *leaf(ca, "doctor-other", CLIENT))
    checks = run_mtls(kafka, cert, other_key)
    local = row(checks, "certificates")
    assert local.status == "fail"
    assert local.problem == f"the private key in {other_key} does not belong to the certificate in {cert}"
    tls = row(checks, "tls")
    assert tls.status == "fail" and tls.code == "KEY_VALUES_MISMATCH" and "private key" in tls.fix


def test_an_expired_client_certificate_on_a_listener_that_does_not_ask_for_one_is_a_warning(
        kafka: KafkaEnv, tmp_path: Path, monkeypatch) -> None:
    # SASL_SSL without client authentication: the certificate is never sent, so the path works (exit 0).
    cert, key = write(tmp_path, "old", *leaf(broker_ca(kafka), "doctor-old", CLIENT,
                                               not_before=NOW - dt.timedelta(days=40), not_after=NOW - dt.timedelta(days=1)))
    login = env_secret(monkeypatch, {"username": kafka.admin_user, "password": kafka.admin_password})
    plan = doctor.plan_from_options([kafka.sasl_bootstrap], access=[f"SASL_SCRAM_512_AUTH={login}"], properties=[
        f"ssl.ca.location={kafka.ca_file}", f"ssl.certificate.location={cert}", f"ssl.key.location={key}"])
    checks = doctor.diagnose(plan, poll=False)
    local = row(checks, "certificates")
    assert local.status == "warn" and "accepted the TLS handshake all the same" in local.detail
    assert exit_code(checks) == 0, checks


def test_broker_certificate_for_client_use_only(tmp_path: Path) -> None:
    ca = make_ca("doctor broker CA")
    key, cert = leaf(ca, "broker-client-only", CLIENT, hosts=("localhost",))
    (tmp_path / "ca.pem").write_text(pem(ca[1]))
    with KafkaTlsListener(tmp_path, key, cert) as server:
        checks = doctor.broker_checks(f"localhost:{server.port}", {"security.protocol": "SSL",
                                      "ssl.ca.location": str(tmp_path / "ca.pem")}, "b", timeout=3)
    tls = checks[-1]
    assert tls.stage == "tls" and tls.status == "fail" and tls.code == "verify 26"
    assert ("the broker certificate CN=broker-client-only cannot identify a TLS server: its extended key usage is "
            "clientAuth only, without serverAuth") in tls.detail
    assert "extendedKeyUsage serverAuth" in tls.fix


def test_expired_broker_certificate_names_its_dates(tmp_path: Path) -> None:
    ca_key, ca_cert = make_ca("doctor broker CA")
    ended = NOW - dt.timedelta(days=5)
    key, cert = issue(ca_key, ca_cert, "localhost", hosts=["localhost"], not_before=NOW - dt.timedelta(days=90),
                      not_after=ended)
    (tmp_path / "ca.pem").write_text(pem(ca_cert))
    with KafkaTlsListener(tmp_path, key, cert) as server:
        tls = doctor.broker_checks(f"localhost:{server.port}", {"security.protocol": "SSL",
                                   "ssl.ca.location": str(tmp_path / "ca.pem")}, "b", timeout=3)[-1]
    assert tls.status == "fail" and tls.code == "verify 10"
    assert f"the broker certificate expired on {ended:%Y-%m-%d}" in tls.detail
    assert "presented chain: CN=localhost (issued by CN=doctor broker CA; valid " in tls.detail
    assert "renew the broker's certificate" in tls.fix


def test_ca_bundle_rows_flag_an_expired_ca_and_a_leaf_in_the_bundle(kafka: KafkaEnv, tmp_path: Path) -> None:
    old_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor retired CA")])
    retired = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(old_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=400))
               .not_valid_after(NOW - dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(old_key, hashes.SHA256()))
    _, not_a_ca = leaf(broker_ca(kafka), "doctor-leaf", CLIENT)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(Path(kafka.ca_file).read_text() + pem(retired) + pem(not_a_ca))
    runner = CliRunner()
    result = runner.invoke(app, ["doctor", "kafka", "-b", kafka.mtls_bootstrap, "--json", "--no-poll",
                                 "-X", "security.protocol=SSL", "-X", f"ssl.ca.location={bundle}",
                                 "-X", f"ssl.certificate.location={kafka.client_cert_file}",
                                 "-X", f"ssl.key.location={kafka.client_key_file}"])
    rows = {c["target"]: c for c in json.loads(result.stdout)["checks"] if c["stage"] == "certificates"}
    assert rows[f"CA CN=triggerfish local CA ({bundle})"]["status"] == "ok"
    assert rows[f"CA CN=doctor retired CA ({bundle})"]["status"] == "warn"
    assert rows[f"CA CN=doctor retired CA ({bundle})"]["problem"].startswith("this CA expired on ")
    assert rows[f"CA CN=doctor-leaf ({bundle})"]["problem"] == "this is not a CA certificate (basicConstraints CA:FALSE)"
    assert result.exit_code == 0, result.stdout  # the path works: the broker's CA is in the bundle and valid


def test_client_certificate_from_an_intermediate_that_is_not_sent(kafka: KafkaEnv, tmp_path: Path) -> None:
    root_key, root = broker_ca(kafka)
    int_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor issuing CA")])
    intermediate = (x509.CertificateBuilder().subject_name(name).issuer_name(root.subject)
                    .public_key(int_key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=30))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .sign(root_key, hashes.SHA256()))
    key, cert = leaf((int_key, intermediate), "doctor-via-intermediate", CLIENT)
    cert_file, key_file = write(tmp_path, "leaf-only", key, cert)

    def run(cert_path: Path, ca_file: str) -> list:
        plan = doctor.plan_from_options([kafka.mtls_bootstrap], properties=[
            "security.protocol=SSL", f"ssl.ca.location={ca_file}", f"ssl.certificate.location={cert_path}",
            f"ssl.key.location={key_file}"])
        return doctor.diagnose(plan, poll=False)

    tls = row(run(cert_file, kafka.ca_file), "tls")
    assert tls.status == "fail"
    assert ("does not trust the CA that issued our client certificate (CN=doctor issuing CA); it accepts client "
            "certificates from: CN=triggerfish local CA") in tls.detail
    assert f"append it after the client certificate in {cert_file}" in tls.fix
    # The fix works with the real broker: the intermediate after the certificate.
    chained = tmp_path / "chained.pem"
    chained.write_text(pem(cert) + pem(intermediate))
    checks = run(chained, kafka.ca_file)
    assert exit_code(checks) == 0, checks
    assert "sent with: CN=doctor issuing CA" in row(checks, "certificates").detail
    # The intermediate in the CA bundle instead: Python's OpenSSL sends it from there (the tls row passes), but
    # librdkafka sends only the certificate file, and the broker refuses it.
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(Path(kafka.ca_file).read_text() + pem(intermediate))
    checks = run(cert_file, str(bundle))
    assert row(checks, "tls").status == "ok"
    login = row(checks, "sasl")
    assert login.status == "fail" and "the broker rejected the client certificate" in login.detail
    assert (f"is issued by the intermediate CN=doctor issuing CA, which is in the CA bundle ({bundle}) but not in "
            f"{cert_file}") in login.detail
    assert login.fix == f"append the intermediate CN=doctor issuing CA (PEM) after the client certificate in {cert_file}"


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_broker_that_lists_no_ca_names_and_refuses_our_ca(tmp_path: Path, version: str) -> None:
    # An OpenSSL server sends an empty CA list in its CertificateRequest unless told otherwise: with no names
    # to compare, our certificate is valid and for client use, so what is left is the CA. In TLS 1.2 the refusal
    # is an alert inside the handshake; in TLS 1.3 it comes after the client's side of it, and Python reads
    # either the alert or a bare EOF (a race): the verdict must be the same.
    import ssl

    server_ca, client_ca, trusted_ca = make_ca("doctor server CA"), make_ca("doctor client CA"), make_ca("doctor other CA")
    key, cert = leaf(server_ca, "localhost", SERVER, hosts=("localhost",))
    (tmp_path / "ca.pem").write_text(pem(server_ca[1]))
    (tmp_path / "trusted.pem").write_text(pem(trusted_ca[1]))
    cert_file, key_file = write(tmp_path, "client", *leaf(client_ca, "doctor-client", CLIENT))
    with KafkaTlsListener(tmp_path, key, cert) as server:
        server.ctx.minimum_version = server.ctx.maximum_version = ssl.TLSVersion[version]
        server.ctx.verify_mode = ssl.CERT_REQUIRED
        server.ctx.load_verify_locations(tmp_path / "trusted.pem")
        tls = doctor.broker_checks(f"localhost:{server.port}", {
            "security.protocol": "SSL", "ssl.ca.location": str(tmp_path / "ca.pem"),
            "ssl.certificate.location": str(cert_file), "ssl.key.location": str(key_file)}, "b", timeout=3)[-1]
    assert tls.status == "fail"
    assert tls.code == "TLSV1_ALERT_UNKNOWN_CA" if version == "TLSv1_2" else tls.code in ("TLSV1_ALERT_UNKNOWN_CA", "")
    assert ("the broker does not trust the CA that issued our client certificate (CN=doctor client CA): the "
            "certificate itself is valid now and for client use") in tls.detail
    assert "ssl.truststore" in tls.fix


def test_client_certificate_without_digital_signature_key_usage(kafka: KafkaEnv, tmp_path: Path) -> None:
    ca_key, ca_cert = broker_ca(kafka)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor-ku")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage(CLIENT), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = write(tmp_path, "ku", key, cert)
    tls = row(run_mtls(kafka, cert_file, key_file), "tls")
    assert tls.status == "fail"
    assert "rejected our client certificate CN=doctor-ku: its key usage is keyAgreement, without digitalSignature" \
        in tls.detail


def root_ca(cn: str, path_length: int | None = None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return key, (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                 .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=400))
                 .not_valid_after(NOW + dt.timedelta(days=400))
                 .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
                 .sign(key, hashes.SHA256()))


def test_expired_intermediate_in_the_broker_chain_is_named(tmp_path: Path) -> None:
    root_key, root = root_ca("doctor root CA")
    int_key = ec.generate_private_key(ec.SECP256R1())
    ended = NOW - dt.timedelta(days=3)
    intermediate = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor lapsed CA")]))
                    .issuer_name(root.subject).public_key(int_key.public_key())
                    .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=300))
                    .not_valid_after(ended).add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .sign(root_key, hashes.SHA256()))
    key, cert = leaf((int_key, intermediate), "localhost", SERVER, hosts=("localhost",),
                     not_before=NOW - dt.timedelta(days=100))
    (tmp_path / "ca.pem").write_text(pem(root))
    with KafkaTlsListener(tmp_path, key, cert, intermediate) as server:
        tls = doctor.broker_checks(f"localhost:{server.port}", {"security.protocol": "SSL",
                                   "ssl.ca.location": str(tmp_path / "ca.pem")}, "b", timeout=3)[-1]
    assert tls.status == "fail" and tls.code == "verify 10"
    assert f"the broker's chain has a CA certificate CN=doctor lapsed CA that expired on {ended:%Y-%m-%d}" in tls.detail
    assert "presented chain: CN=localhost (" in tls.detail and "<- CN=doctor lapsed CA (" in tls.detail
    assert "renewed certificate" in tls.fix


def test_broker_chain_longer_than_the_roots_path_length(tmp_path: Path) -> None:
    # make_ca's roots allow no intermediate (pathLen 0): a chain through one fails verification with code 25.
    root_key, root = make_ca("doctor strict root")
    int_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor extra CA")]))
                    .issuer_name(root.subject).public_key(int_key.public_key())
                    .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
                    .not_valid_after(NOW + dt.timedelta(days=30))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .sign(root_key, hashes.SHA256()))
    key, cert = leaf((int_key, intermediate), "localhost", SERVER, hosts=("localhost",))
    (tmp_path / "ca.pem").write_text(pem(root))
    with KafkaTlsListener(tmp_path, key, cert, intermediate) as server:
        tls = doctor.broker_checks(f"localhost:{server.port}", {"security.protocol": "SSL",
                                   "ssl.ca.location": str(tmp_path / "ca.pem")}, "b", timeout=3)[-1]
    assert tls.status == "fail" and tls.code == "verify 25"
    assert "not signed by a CA" not in tls.detail  # the CA is the right one; its constraint is the problem
    assert "CN=doctor strict root allows no intermediate CA below it (pathLenConstraint 0)" in tls.detail
    assert "pathLenConstraint" in tls.fix
