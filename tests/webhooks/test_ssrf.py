"""SSRF: URLs refused at creation, addresses refused at connection time, and a canary that sees nothing."""

import ipaddress
import socket

import pytest
from django.test import override_settings

from webhooks.models import WebhookDelivery
from webhooks.services import webhook_event_record
from webhooks.urlsafety import address_problem

from .factories import WebhookEndpointFactory
from .helpers import deliver_due

pytestmark = pytest.mark.django_db

BLOCKED_ADDRESSES = {
    "127.0.0.1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "224.0.0.1": "multicast",
    "240.0.0.1": "reserved",
    "0.0.0.0": "unspecified",
    "255.255.255.255": "reserved",
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:169.254.169.254": "link-local",
    "64:ff9b::a00:1": "private",
    "2002:7f00:1::": "loopback",
}


@pytest.mark.parametrize(("address", "kind"), BLOCKED_ADDRESSES.items())
def test_every_non_public_address_class_is_named(address, kind):
    assert kind in address_problem(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"])
def test_public_addresses_pass(address):
    assert address_problem(ipaddress.ip_address(address)) is None


REFUSED_AT_CREATION = [
    ("ftp://hooks.example.com/x", "webhook_url_scheme_not_allowed"),
    ("javascript:alert(1)", "webhook_url_scheme_not_allowed"),
    ("http://hooks.example.com/x", "webhook_url_scheme_not_allowed"),
    ("https://127.0.0.1/x", "webhook_url_private_address"),
    ("https://10.0.0.8/x", "webhook_url_private_address"),
    ("https://169.254.169.254/latest/meta-data/", "webhook_url_private_address"),
    ("https://100.64.0.1/", "webhook_url_private_address"),
    ("https://224.0.0.1/", "webhook_url_private_address"),
    ("https://240.0.0.1/", "webhook_url_private_address"),
    ("https://0.0.0.0/", "webhook_url_private_address"),
    ("https://[::1]/", "webhook_url_private_address"),
    ("https://[::ffff:127.0.0.1]/", "webhook_url_private_address"),
    ("https://[fe80::1]/", "webhook_url_private_address"),
    ("https://[fd00::1]/", "webhook_url_private_address"),
    ("https://localhost/hook", "webhook_url_private_address"),
    ("https://api.localhost/hook", "webhook_url_private_address"),
    ("https://metadata.google.internal/", "webhook_url_private_address"),
    ("https://intranet/hook", "webhook_url_private_address"),
    ("https://2130706433/", "webhook_url_invalid"),
    ("https://0x7f000001/", "webhook_url_invalid"),
    ("https://0177.0.0.1/", "webhook_url_invalid"),
    ("https://127.1/", "webhook_url_invalid"),
    ("https://user:pass@hooks.example.com/", "webhook_url_invalid"),
    ("https:///nohost", "webhook_url_invalid"),
    ("https://hooks.example.com:99999/", "webhook_url_invalid"),
    ("not a url", "webhook_url_scheme_not_allowed"),
]


@pytest.mark.parametrize(("url", "code"), REFUSED_AT_CREATION)
def test_unsafe_urls_are_refused_at_creation_with_a_clear_code(api, url, code):
    response = api.post("/api/webhook_endpoints", {"url": url}, format="json")
    assert response.status_code == 422, response.json()
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["url"]


PUBLIC_ONLY = "webhooks only reach public addresses."


@pytest.mark.parametrize(
    ("template", "refusal"),
    [
        # a name resolving to 127.0.0.1 (or ::1: whichever the resolver lists first, as the sender sees it)
        ("https://localhost:{port}/hook", "Refused: localhost resolves to {localhost}, a loopback address; "),
        ("https://127.0.0.1:{port}/hook", "Refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address; "),
        (
            "https://2130706433:{port}/hook",
            "Refused: 2130706433 resolves to 127.0.0.1, a loopback address; ",
        ),  # decimal
        ("https://0x7f000001:{port}/hook", "Refused: 0x7f000001 resolves to 127.0.0.1, a loopback address; "),  # hex
        ("https://0177.0.0.1:{port}/hook", "Refused: 0177.0.0.1 resolves to 127.0.0.1, a loopback address; "),  # octal
        ("https://127.1:{port}/hook", "Refused: 127.1 resolves to 127.0.0.1, a loopback address; "),
        (  # IPv4-mapped IPv6
            "https://[::ffff:127.0.0.1]:{port}/hook",
            "Refused: ::ffff:127.0.0.1 resolves to ::ffff:127.0.0.1, a loopback address (embedded in ::ffff:7f00:1); ",
        ),
        # plain http, when private URLs are not allowed
        ("http://localhost:{port}/hook", "Refused: the scheme http is not allowed; use https."),
    ],
)
def test_addresses_are_checked_again_at_connection_time_and_nothing_is_connected(owner, canary, template, refusal):
    # Written past validation, as a name whose DNS changed after creation would be.
    WebhookEndpointFactory(account=owner, url=template.format(port=canary.port))
    webhook_event_record(account=owner, type="enrollment.sent", data={})
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_URLS=False):
        deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    localhost = socket.getaddrinfo("localhost", canary.port, type=socket.SOCK_STREAM)[0][4][0]
    expected = refusal.format(localhost=localhost)
    assert delivery.last_error == (expected + PUBLIC_ONLY if expected.endswith("; ") else expected)
    assert canary.unreached()


def test_the_refusal_names_the_address_and_its_class(owner, canary):
    WebhookEndpointFactory(account=owner, url=f"https://localhost:{canary.port}/")
    webhook_event_record(account=owner, type="enrollment.sent", data={})
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_URLS=False):
        deliver_due()
    error = WebhookDelivery.objects.get().last_error
    assert "localhost resolves to" in error and "loopback" in error


def test_allowing_private_urls_lifts_the_address_check(owner, receiver):
    WebhookEndpointFactory(account=owner, url=f"http://localhost:{receiver.port}/hook")
    webhook_event_record(account=owner, type="enrollment.sent", data={})
    deliver_due()
    (request,) = receiver.requests
    assert request.headers["host"] == f"localhost:{receiver.port}"  # the name, though we dialled the address
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_a_redirect_to_an_internal_address_is_not_followed(owner, receiver, canary):
    from .conftest import Answer

    # The canary listens where the redirect points (a loopback address; private URLs are allowed
    # here, so only the no-redirect rule stands between the sender and it): following it would show.
    receiver.script(Answer(307, headers={"Location": f"http://127.0.0.1:{canary.port}/latest/meta-data/"}))
    WebhookEndpointFactory(account=owner, url=receiver.url)
    webhook_event_record(account=owner, type="enrollment.sent", data={})
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code == 307 and "redirects are not followed" in delivery.last_error
    assert canary.unreached() and len(receiver.requests) == 1
