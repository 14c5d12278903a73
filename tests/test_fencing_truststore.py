"""Without INFINISPAN_CA_FILE, Infinispan's certificate is checked against the system trust store
(OpenSSL's default verify paths), not against certifi's bundle, which httpx would use by default.

The system store itself is not touched: OpenSSL's default paths are the system file plus the system
directory, and SSL_CERT_FILE / SSL_CERT_DIR replace each of them. With SSL_CERT_FILE set to an
unrelated CA and the test CA in SSL_CERT_DIR, a client using the system store (both paths) trusts
the server while httpx's default (SSL_CERT_FILE only, else certifi) does not.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import trustme

from fake_infinispan import FakeInfinispan
from fencing_support import CACHES, ISPN_PASSWORD, ISPN_USER
from triggerfish.errors import PermanentFencingError
from triggerfish.functions.fencing.infinispan import Infinispan

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to hash a CA directory")


@pytest.fixture
def server(ca: tuple[trustme.CA, str]):
    fake = FakeInfinispan("site-a", ["site-b"], CACHES, ISPN_USER, ISPN_PASSWORD, ca[0])
    fake.start()
    yield fake
    fake.stop()


def _hashed_dir(ca_file: str, directory: Path) -> str:
    """A CA directory as OpenSSL looks it up: ``<subject hash>.0``."""
    digest = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", ca_file], capture_output=True, text=True,
                            check=True).stdout.strip()
    directory.mkdir()
    shutil.copy(ca_file, directory / f"{digest}.0")
    return str(directory)


def test_without_a_ca_file_the_system_trust_store_is_used(server, ca, tmp_path, monkeypatch):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    monkeypatch.setenv("SSL_CERT_DIR", _hashed_dir(ca[1], tmp_path / "certs"))
    endpoint = f"https://{server.endpoint}"

    # httpx's own default does not look in the system directory: this set-up tells the two apart.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{endpoint}/rest/v2/container/x-site/backups/", auth=(ISPN_USER, ISPN_PASSWORD))

    trusting = Infinispan({"site-a": endpoint}, ISPN_USER, lambda: ISPN_PASSWORD)
    assert trusting.check() == {}
    assert trusting.take_offline("site-a", "site-b") == {cache: "ok" for cache in CACHES}

    monkeypatch.delenv("SSL_CERT_DIR")  # the CA is in neither the system store nor INFINISPAN_CA_FILE
    untrusting = Infinispan({"site-a": endpoint}, ISPN_USER, lambda: ISPN_PASSWORD)
    with pytest.raises(PermanentFencingError, match="TLS certificate not trusted; set INFINISPAN_CA_FILE"):
        untrusting.take_offline("site-a", "site-b")
    assert "TLS certificate not trusted" in untrusting.check()["site-a"]


def test_a_ca_file_is_trusted_on_its_own(server, ca):
    client = Infinispan({"site-a": f"https://{server.endpoint}"}, ISPN_USER, lambda: ISPN_PASSWORD, ca_file=ca[1])
    assert client.check() == {}
