"""The HTTP POST of one attempt, connected to an address that was checked.

Built on the standard library's `http.client` because the one thing we need
that clients do not offer directly is to connect to an address we choose
while speaking to the name of the URL: the `Host` header, TLS SNI and
certificate verification all use the name, the TCP connection goes to the
address `urlsafety.resolve_public_addresses` checked. Nothing here follows
redirects. The whole attempt (connect, TLS, request, response) is bounded by
one deadline: a watchdog shuts the socket when it passes, so a receiver that
trickles bytes cannot hold a worker longer than the timeout.

Connections are kept alive per (scheme, address, port, name) in a per-thread
pool, so a busy endpoint costs one TCP/TLS handshake per worker, not per event.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from .urlsafety import UnsafeAddress, resolve_public_addresses

USER_AGENT = "Outreach-Webhooks/1.0"
MAX_BODY_KEPT = 512  # characters of the receiver's answer stored with a failed attempt
MAX_BODY_READ = 64 * 1024  # read past this and the connection is dropped instead of reused

_pool = threading.local()
_ssl_contexts: dict[str, ssl.SSLContext] = {}


@dataclass
class PostResult:
    status_code: int | None = None
    error: str = ""
    duration_ms: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    refused: bool = False  # the SSRF check refused: no connection was made

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _tls_context() -> ssl.SSLContext:
    """Certificate and hostname verification on; the CAs of WEBHOOKS_CA_BUNDLE or the system's."""
    bundle = settings.WEBHOOKS_CA_BUNDLE
    if bundle not in _ssl_contexts:
        _ssl_contexts[bundle] = ssl.create_default_context(cafile=bundle or None)
    return _ssl_contexts[bundle]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Talks to `self.host` (Host header) over a TCP connection to `address`."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def _open_socket(self) -> socket.socket:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connect(self) -> None:
        self.sock = self._open_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = 443

    def connect(self) -> None:
        # SNI and certificate verification against the URL's name, not the address.
        self.sock = _tls_context().wrap_socket(self._open_socket(), server_hostname=self.host)


def _connections() -> dict:
    if not hasattr(_pool, "idle"):
        _pool.idle = {}
    return _pool.idle


def close_idle_connections() -> None:
    for conn in _connections().values():
        conn.close()
    _connections().clear()


def _abort(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _exchange(conn, path: str, body: bytes, headers: dict[str, str], deadline: float) -> PostResult:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    conn.timeout = remaining
    if conn.sock is not None:
        conn.sock.settimeout(remaining)
    fired = threading.Event()
    watchdog = threading.Timer(remaining, _abort, (conn, fired))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        kept = response.read(MAX_BODY_READ)
        reusable = not response.will_close and response.read(1) == b""
        if fired.is_set():
            # The socket was shut mid-answer: whatever was parsed is truncated.
            raise TimeoutError
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        result = PostResult(status_code=response.status, headers=answer_headers)
        if not result.ok:
            excerpt = kept[:MAX_BODY_KEPT].decode("utf-8", "replace")
            result.error = f"HTTP {response.status} {response.reason}".strip()
            if 300 <= response.status < 400:
                result.error += f"; redirects are not followed (Location: {answer_headers.get('location', '-')})"
            if excerpt:
                result.error += f": {excerpt}"
        if not reusable:
            conn.close()
        return result
    finally:
        watchdog.cancel()
        if time.monotonic() >= deadline:
            conn.close()


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool | None = None):
    """POST `body` to `url` within `timeout` seconds in all. Never raises for network trouble."""
    started = time.monotonic()
    deadline = started + timeout

    def done(result: PostResult) -> PostResult:
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    try:
        scheme, host, port, addresses = resolve_public_addresses(url, allow_private=allow_private)
    except UnsafeAddress as exc:
        return done(PostResult(error=str(exc), refused=True))
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers}
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    idle = _connections()
    last_error = ""
    for address in addresses:
        key = (scheme, address, port, host)
        conn = idle.pop(key, None)
        reused = conn is not None
        if conn is None:
            conn = connection_class(host, port, address=address, timeout=max(deadline - time.monotonic(), 0.001))
        try:
            try:
                result = _exchange(conn, path, body, headers, deadline)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                # The receiver closed a kept-alive connection; try once on a fresh one.
                conn.close()
                conn = connection_class(host, port, address=address, timeout=max(deadline - time.monotonic(), 0.001))
                result = _exchange(conn, path, body, headers, deadline)
        except TimeoutError:
            conn.close()
            return done(PostResult(error=f"Timed out after {timeout:g} s ({host} at {address})."))
        except ssl.SSLError as exc:
            conn.close()
            return done(PostResult(error=f"TLS failed with {host} at {address}: {exc}."))
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if time.monotonic() >= deadline:
                return done(PostResult(error=f"Timed out after {timeout:g} s ({host} at {address})."))
            last_error = f"Connection to {host} at {address} failed: {exc.__class__.__name__} {exc}".strip()
            continue  # try the next checked address
        if conn.sock is not None:
            idle[key] = conn
        return done(result)
    return done(PostResult(error=last_error + "."))
