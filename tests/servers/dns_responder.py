"""A small authoritative DNS responder on 127.0.0.1 for MX tests and benchmarks.

`DnsResponder(rules)` answers MX queries by asking `rules(domain)` for one of:
"mx" (an MX record), "nullmx" (RFC 7505 `0 .`), "nomx" (NOERROR, no answer),
"nxdomain", "servfail", or "drop" (never answers: the client times out).
It counts the queries it received per domain.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable


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
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def answer(self, query: bytes) -> bytes | None:
        """The reply to one query, built by hand so that the server keeps up with a benchmark."""
        if len(query) < 17:
            return None
        labels, offset = [], 12
        while offset < len(query) and query[offset]:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        question_end = offset + 5  # the root label, QTYPE, QCLASS
        qtype = struct.unpack(">H", query[offset + 1 : offset + 3])[0]
        domain = ".".join(labels).lower()
        self.queries[domain] += 1
        behaviour = self.rules(domain)
        if behaviour == "drop":
            return None
        rcode, answers = {"nxdomain": 3, "servfail": 2}.get(behaviour, 0), b""
        if behaviour in ("mx", "nullmx") and qtype == 15:
            # MX rdata: preference, then the exchange: "." or "mx." + a pointer to the question name
            exchange = b"\x00" if behaviour == "nullmx" else b"\x02mx\xc0\x0c"
            rdata = struct.pack(">H", 0 if behaviour == "nullmx" else 10) + exchange
            answers = b"\xc0\x0c" + struct.pack(">HHIH", 15, 1, 300, len(rdata)) + rdata
        flags = 0x8400 | (query[2] & 0x01) << 8 | rcode  # QR, AA, RD copied, RCODE
        header = query[:2] + struct.pack(">HHHHH", flags, 1, 1 if answers else 0, 0, 0)
        return header + query[12:question_end] + answers


def _main() -> None:
    """`python -m tests.servers.dns_responder --nxdomain-every N`: a responder in its own process.

    Prints its port, then answers until killed: domains named `domain<k>.…` with k
    divisible by N are NXDOMAIN, every other domain has an MX record.
    """
    import argparse
    import sys
    import time

    parser = argparse.ArgumentParser()
    parser.add_argument("--nxdomain-every", type=int, default=100)
    every = parser.parse_args().nxdomain_every

    def rules(domain: str) -> str:
        number = domain.removeprefix("domain").split(".")[0]
        return "nxdomain" if number.isdigit() and int(number) % every == 0 else "mx"

    with DnsResponder(rules) as server:
        print(server.port, flush=True)
        while sys.stdin.readline():  # until the parent closes our stdin
            time.sleep(0.1)


if __name__ == "__main__":
    _main()
