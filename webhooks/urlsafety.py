"""SSRF protection: which webhook URLs may be stored, and which addresses may be reached.

Two checks, both needed:

* `validate_endpoint_url` at create/update: a URL we can refuse without DNS
  (bad scheme, credentials, literal private IPs in any spelling — 2130706433,
  0x7f000001, 0177.0.0.1, 127.1 —, localhost-like names). Raises 422 codes.
* `resolve_public_addresses` at every delivery attempt: resolve the name once,
  refuse if ANY address is not public, and hand back the checked addresses so
  the transport connects to exactly those (no second lookup an attacker's DNS
  could answer differently: DNS rebinding).

`settings.WEBHOOKS_ALLOW_PRIVATE_URLS` lifts the address checks and allows
plain http (development and tests with receivers on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from core.errors import ValidationFailed

from .models import URL_MAX_LENGTH

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

URL_INVALID = "webhook_url_invalid"
URL_SCHEME_NOT_ALLOWED = "webhook_url_scheme_not_allowed"
URL_PRIVATE_ADDRESS = "webhook_url_private_address"

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


class UnsafeAddress(Exception):
    """A delivery may not connect: bad scheme, unresolvable name, or a non-public address."""


def address_problem(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (embedded in {address})" if problem else None
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (cloud metadata lives here)"),
        (address.version == 4 and address in _CGNAT, "a carrier-grade NAT address (100.64.0.0/10)"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (getattr(address, "is_site_local", False), "a site-local address"),
        (not address.is_global, "not a globally routable address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names literally, in any spelling `inet_aton` accepts, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _invalid(message: str, code: str = URL_INVALID) -> ValidationFailed:
    return ValidationFailed(message, code=code, details={"url": [message]})


def validate_endpoint_url(url: str, *, allow_private: bool | None = None) -> str:
    """The URL to store (fragment dropped), or a 422 naming what is wrong.

    Codes: `webhook_url_invalid`, `webhook_url_scheme_not_allowed`, `webhook_url_private_address`.
    """
    if allow_private is None:
        allow_private = settings.WEBHOOKS_ALLOW_PRIVATE_URLS
    url = (url or "").strip()
    if not url or len(url) > URL_MAX_LENGTH:
        raise _invalid(f"The URL must be 1 to {URL_MAX_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise _invalid(f"The URL cannot be parsed: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _invalid("Only https URLs are accepted.", URL_SCHEME_NOT_ALLOWED)
    if scheme == "http" and not allow_private:
        raise _invalid("Only https URLs are accepted (plain http would expose the payloads).", URL_SCHEME_NOT_ALLOWED)
    if not host:
        raise _invalid("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise _invalid("Credentials in the URL are not supported; put a token in the path or query instead.")
    if not host.isascii() or any(c.isspace() for c in url):
        raise _invalid("The host must be ASCII (use the xn-- form of international names) and the URL unspaced.")
    if port == 0:
        raise _invalid("Port 0 is not a valid port.")
    literal = parse_ip_literal(host)
    if literal is not None and str(literal) != host.lower() and ":" not in host:
        raise _invalid(f"Write the IP address {literal} in dotted-decimal form (the URL spells it {host}).")
    if not allow_private:
        if literal is not None:
            problem = address_problem(literal)
            if problem:
                raise _invalid(f"{host} is {problem}; webhooks only reach public addresses.", URL_PRIVATE_ADDRESS)
        else:
            name = host.lower().rstrip(".")
            if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES) or "." not in name:
                raise _invalid(f"{host} is a local name; webhooks only reach public hosts.", URL_PRIVATE_ADDRESS)
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def resolve_public_addresses(url: str, *, allow_private: bool | None = None) -> tuple[str, str, int, list[str]]:
    """(scheme, host, port, addresses to connect to) for one attempt; raises `UnsafeAddress`.

    The name is resolved once here and every address is checked; the caller
    must connect to these addresses, never resolve again.
    """
    if allow_private is None:
        allow_private = settings.WEBHOOKS_ALLOW_PRIVATE_URLS
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UnsafeAddress(f"Refused: the URL cannot be parsed ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or (scheme == "http" and not allow_private):
        raise UnsafeAddress(f"Refused: the scheme {scheme or '(none)'} is not allowed; use https.")
    if not host:
        raise UnsafeAddress("Refused: the URL has no host.")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UnsafeAddress(f"Could not resolve {host}: {exc}.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UnsafeAddress(f"Could not resolve {host}: no addresses.")
    if not allow_private:
        for raw in addresses:
            problem = address_problem(ipaddress.ip_address(raw.split("%", 1)[0]))
            if problem:
                raise UnsafeAddress(
                    f"Refused: {host} resolves to {raw}, {problem}; webhooks only reach public addresses."
                )
    return scheme, host, port, addresses
