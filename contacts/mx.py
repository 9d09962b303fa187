"""MX checks: does a domain accept mail at all?

Each distinct domain is resolved once per call, concurrently, with a short
timeout, through `DNS_NAMESERVERS` (empty: the system resolver). Verdicts are
cached across calls (the Django cache: Redis in production).

Only proof counts as `invalid`: NXDOMAIN, an answer without MX records, or a
null MX (RFC 7505: a single `0 .` record). A timeout, SERVFAIL or any other
failure is `unknown`: not proof of anything, so the contact is enrolled and
checked again at dispatch. Unknown verdicts are not cached.

This lives with contacts (it is about their addresses' domains) so that
enrollments, below mailing in the dependency order, can use it.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

TIMEOUT_SECONDS = 2.0
CONCURRENCY = 200
VALID_TTL = 24 * 3600
INVALID_TTL = 6 * 3600
CACHE_PREFIX = "mx:v1:"


class MxStatus(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class MxVerdict:
    status: MxStatus
    reason: str = ""


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower()


def _nameservers() -> list[dns.nameserver.Nameserver]:
    servers = []
    for entry in settings.DNS_NAMESERVERS:
        host, port = entry.strip(), 53
        if host.startswith("["):  # [::1]:5353
            host, _, rest = host[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif host.count(":") == 1:
            host, raw_port = host.split(":")
            port = int(raw_port)
        servers.append(dns.nameserver.Do53Nameserver(host, port))
    return servers


def _resolver() -> dns.asyncresolver.Resolver:
    try:
        servers = _nameservers()
    except ValueError as exc:
        raise ImproperlyConfigured(f"DNS_NAMESERVERS is malformed: {exc}") from exc
    if servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = servers
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.timeout = TIMEOUT_SECONDS
    resolver.lifetime = TIMEOUT_SECONDS
    resolver.cache = None  # verdicts are cached by us, across processes
    return resolver


async def _check(resolver: dns.asyncresolver.Resolver, domain: str, gate: asyncio.Semaphore) -> MxVerdict:
    async with gate:
        try:
            answer = await resolver.resolve(domain, dns.rdatatype.MX, search=False)
        except dns.resolver.NXDOMAIN:
            return MxVerdict(MxStatus.INVALID, "The domain does not exist (NXDOMAIN).")
        except dns.resolver.NoAnswer:
            return MxVerdict(MxStatus.INVALID, "The domain has no MX record.")
        except dns.exception.Timeout:
            return MxVerdict(MxStatus.UNKNOWN, "The MX lookup timed out.")
        except (dns.resolver.NoNameservers, dns.exception.DNSException) as exc:
            return MxVerdict(MxStatus.UNKNOWN, f"The MX lookup failed: {exc.__class__.__name__}.")
    records = list(answer)
    if len(records) == 1 and records[0].exchange == dns.name.root:
        return MxVerdict(MxStatus.INVALID, "The domain accepts no mail (null MX, RFC 7505).")
    return MxVerdict(MxStatus.VALID)


async def _check_all(domains: list[str]) -> dict[str, MxVerdict]:
    resolver, gate = _resolver(), asyncio.Semaphore(CONCURRENCY)
    verdicts = await asyncio.gather(*(_check(resolver, domain, gate) for domain in domains))
    return dict(zip(domains, verdicts, strict=True))


def check_domains(domains: Iterable[str]) -> dict[str, MxVerdict]:
    """The verdict for each distinct domain: from the cache, else resolved now."""
    wanted = sorted({d.lower() for d in domains if d})
    cached = cache.get_many([CACHE_PREFIX + d for d in wanted])
    verdicts = {
        d: MxVerdict(MxStatus(cached[CACHE_PREFIX + d][0]), cached[CACHE_PREFIX + d][1])
        for d in wanted
        if CACHE_PREFIX + d in cached
    }
    missing = [d for d in wanted if d not in verdicts]
    if missing:
        fresh = asyncio.run(_check_all(missing))
        verdicts.update(fresh)
        for status, ttl in ((MxStatus.VALID, VALID_TTL), (MxStatus.INVALID, INVALID_TTL)):
            to_cache = {CACHE_PREFIX + d: (v.status.value, v.reason) for d, v in fresh.items() if v.status == status}
            if to_cache:
                cache.set_many(to_cache, ttl)
    return verdicts
