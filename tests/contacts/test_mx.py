import pytest
from django.core.cache import cache
from django.test import override_settings

from contacts.mx import MxStatus, check_domains
from tests.servers.dns_responder import DnsResponder

RULES = {
    "good.example": "mx",
    "nullmx.example": "nullmx",
    "nomx.example": "nomx",
    "gone.example": "nxdomain",
    "broken.example": "servfail",
    "slow.example": "drop",
}


@pytest.fixture
def dns_server():
    cache.clear()
    with (
        DnsResponder(lambda domain: RULES.get(domain, "nxdomain")) as server,
        override_settings(DNS_NAMESERVERS=[server.nameserver]),
    ):
        yield server
    cache.clear()


def test_only_proof_of_no_mail_counts_as_invalid(dns_server):
    verdicts = check_domains(RULES)
    assert {d: v.status for d, v in verdicts.items()} == {
        "good.example": MxStatus.VALID,
        "nullmx.example": MxStatus.INVALID,
        "nomx.example": MxStatus.INVALID,
        "gone.example": MxStatus.INVALID,
        "broken.example": MxStatus.UNKNOWN,
        "slow.example": MxStatus.UNKNOWN,
    }
    assert "RFC 7505" in verdicts["nullmx.example"].reason
    assert "NXDOMAIN" in verdicts["gone.example"].reason


def test_each_domain_is_resolved_once_and_proofs_are_cached_across_calls(dns_server):
    check_domains(["good.example", "GOOD.example", "gone.example", "broken.example"])
    assert dns_server.queries["good.example"] == 1
    check_domains(["good.example", "gone.example", "broken.example"])
    assert dns_server.queries["good.example"] == 1  # cached
    assert dns_server.queries["gone.example"] == 1  # cached
    assert dns_server.queries["broken.example"] >= 2  # inconclusive: asked again
