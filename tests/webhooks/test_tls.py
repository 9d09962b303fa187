"""TLS: the connection goes to the checked address, but SNI and certificate checks use the URL's name."""

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import override_settings

from webhooks.models import WebhookDelivery
from webhooks.services import webhook_event_record

from .factories import WebhookEndpointFactory
from .helpers import deliver_due

pytestmark = pytest.mark.django_db


def _certificate(subject: str, issuer_key, issuer_name, key, *, ca: bool, san=None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls_receiver(tmp_path):
    """An https receiver on 127.0.0.1 whose certificate names only `localhost`; records the SNI it saw."""
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca_cert = _certificate("Test CA", ca_key, ca_name, ca_key, ca=True)
    leaf = _certificate("localhost", ca_key, ca_name, leaf_key, ca=False, san=[x509.DNSName("localhost")])
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.key").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    seen = {"sni": [], "hosts": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen["hosts"].append(self.headers["Host"])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_URLS=True, WEBHOOKS_CA_BUNDLE=str(tmp_path / "ca.pem")):
        yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def test_https_speaks_the_urls_name_to_the_checked_address(owner, tls_receiver):
    port, seen = tls_receiver
    WebhookEndpointFactory(account=owner, url=f"https://localhost:{port}/hook")
    webhook_event_record(account=owner, type="enrollment.sent", data={})
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded", delivery.last_error
    assert seen["sni"] == ["localhost"] and seen["hosts"] == [f"localhost:{port}"]


def test_a_certificate_not_naming_the_url_host_is_refused(owner, tls_receiver):
    port, seen = tls_receiver
    WebhookEndpointFactory(account=owner, url=f"https://127.0.0.1:{port}/hook")
    webhook_event_record(account=owner, type="enrollment.sent", data={})
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and "TLS failed" in delivery.last_error
    assert "certificate verify failed" in delivery.last_error and seen["hosts"] == []
