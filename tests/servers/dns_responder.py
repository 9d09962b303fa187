"""A small authoritative DNS responder on 127.0.0.1 for MX tests and benchmarks.

`DnsResponder(rules)` answers MX queries by asking `rules(domain)` for one of:
"mx" (an MX record), "nullmx" (RFC 7505 `0 .`), "nomx" (NOERROR, no answer),
"nxdomain", "servfail", or "drop" (never answers: the client times out).
It counts the queries it received per domain.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsResponder:
    def __init__(self, rules: Callable[[str], str]) -> None:
        self.rules = rules
        self.queries: Counter[str] = Counter()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DnsResponder:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: S112 - a test server ignores garbage
                continue
            reply = self._answer(query)
            if reply is not None:
                self.sock.sendto(reply.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        domain = question.name.to_text(omit_final_dot=True).lower()
        self.queries[domain] += 1
        behaviour = self.rules(domain)
        if behaviour == "drop":
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        if behaviour == "nxdomain":
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif behaviour == "servfail":
            reply.set_rcode(dns.rcode.SERVFAIL)
        elif behaviour in ("mx", "nullmx") and question.rdtype == dns.rdatatype.MX:
            target = "." if behaviour == "nullmx" else f"mx.{domain}."
            preference = 0 if behaviour == "nullmx" else 10
            reply.answer.append(
                dns.rrset.from_text(question.name, 300, dns.rdataclass.IN, dns.rdatatype.MX, f"{preference} {target}")
            )
        return reply  # "nomx": NOERROR with an empty answer
