"""odoo_smoke_test over HTTPS: a private CA given as a PEM bundle, verification always on.

A CA and a server certificate are made here; the server answers /web/health over TLS on 127.0.0.1.
"""

import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import smoke as _smoke
from ansible_collections.sysgenpro.odoo_migration.plugins.modules import odoo_smoke_test
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PUBLIC_NAME = "erp.test.internal"


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _certificate(subject, key, issuer_name, issuer_key, *, ca, names=()):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _ca(name):
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return key, _certificate(name, key, issuer, key, ca=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The private CA's bundle, another CA's bundle, and the server's certificate and key."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("Test private CA")
    _other_key, other_cert = _ca("Another CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(PUBLIC_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_cert = _certificate(PUBLIC_NAME, server_key, ca_cert.subject, ca_key, ca=False, names=names)
    (folder / "ca.pem").write_bytes(_pem(ca_cert))
    (folder / "other-ca.pem").write_bytes(_pem(other_cert))
    (folder / "server.pem").write_bytes(
        _pem(server_cert)
        + server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "pass"}'
        self.send_response(200 if self.path == "/web/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _CountingServer(ThreadingHTTPServer):
    connections = 0

    def get_request(self):
        self.connections += 1
        return super().get_request()


@pytest.fixture(scope="module")
def https_server(pki):
    """An HTTPS server on 127.0.0.1 with an ephemeral port; records the TLS name each client asked for."""
    asked = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem")
    context.sni_callback = lambda _sock, name, _ctx: asked.append(name)
    server = _CountingServer(("127.0.0.1", 0), _Health)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"https://127.0.0.1:{server.server_address[1]}", "asked": asked, "server": server}
    server.shutdown()
    server.server_close()


def health(url, **client):
    return _smoke.check_health(_smoke.OdooClient(url, "acme", **client))


def test_the_ca_bundle_given_verifies_the_server(https_server, pki):
    before = https_server["server"].connections
    assert health(https_server["url"], ca_path=str(pki / "ca.pem")) == (True, 'HTTP 200 {"status": "pass"}')
    assert https_server["server"].connections == before + 1


def test_without_the_bundle_the_certificate_is_refused(https_server):
    with pytest.raises(_smoke.SmokeError, match="CERTIFICATE_VERIFY_FAILED") as refused:
        health(https_server["url"])
    assert "give its PEM bundle as ca_path" in str(refused.value)


def test_a_bundle_of_another_ca_is_refused(https_server, pki):
    with pytest.raises(_smoke.SmokeError, match="CERTIFICATE_VERIFY_FAILED"):
        health(https_server["url"], ca_path=str(pki / "other-ca.pem"))


def test_the_host_header_is_the_tls_name_and_must_be_on_the_certificate(https_server, pki):
    ca_path = str(pki / "ca.pem")
    del https_server["asked"][:]
    assert health(https_server["url"], ca_path=ca_path, headers={"Host": PUBLIC_NAME + ":443"})[0] is True
    assert https_server["asked"] == [PUBLIC_NAME]
    with pytest.raises(_smoke.SmokeError, match="Hostname mismatch") as refused:
        health(https_server["url"], ca_path=ca_path, headers={"Host": "other.test.internal"})
    assert "must name the Host header's host" in str(refused.value)


@pytest.mark.parametrize(
    ("bundle", "said"),
    [
        ("missing.pem", "does not exist or is not a file"),
        (".", "does not exist or is not a file"),
        ("not-pem.pem", "not a readable PEM CA bundle"),
    ],
)
def test_a_bad_bundle_fails_naming_it_and_the_fix_before_any_request(
    tmp_path, capsys, https_server, bundle, said
):
    (tmp_path / "not-pem.pem").write_text("not a certificate\n")
    path = str(tmp_path / bundle)
    before = https_server["server"].connections
    args = dict(url=https_server["url"], database="acme", password="pw", checks=["health"], ca_path=path)
    with patch_module_args(args), pytest.raises(SystemExit):
        odoo_smoke_test.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True and result["checks"] == []
    assert result["msg"].startswith(f"ca_path {path}") and said in result["msg"]
    assert "PEM bundle of the CA that signed the server's certificate" in result["msg"]
    assert https_server["server"].connections == before


def test_the_module_proves_an_instance_behind_a_private_ca(capsys, https_server, pki):
    args = dict(
        url=https_server["url"],
        database="acme",
        password="pw",
        checks=["health"],
        ca_path=str(pki / "ca.pem"),
        headers={"Host": PUBLIC_NAME},
    )
    with patch_module_args(args), pytest.raises(SystemExit):
        odoo_smoke_test.main()
    result = json.loads(capsys.readouterr().out)
    assert not result.get("failed"), result.get("msg")
    assert [(check["name"], check["ok"]) for check in result["checks"]] == [("health", True)]
