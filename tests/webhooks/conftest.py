"""Real servers on 127.0.0.1 for the webhook tests: a scriptable HTTP receiver and a canary.

`receiver.script(...)` queues answers (status, headers, body, delay); once the
queue is empty every request gets 200. Every request is recorded with its
headers and body, so tests verify signatures with `standardwebhooks`.
The canary is a bare TCP listener that counts connections: an SSRF test
passes only if it accepted none before the test's own probe (`Canary.unreached`).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings


@dataclass
class Answer:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    trickle: bool = False  # send the status line, then a header byte every 0.3 s
    hold: threading.Event | None = None  # wait for this before answering


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.requests: list[Received] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                receiver.arrived.set()
                answer = receiver.answers.popleft() if receiver.answers else Answer()
                if answer.hold is not None:
                    answer.hold.wait(30)
                time.sleep(answer.delay)
                try:
                    if answer.trickle:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                        for _ in range(30):
                            self.wfile.write(b"X")
                            self.wfile.flush()
                            time.sleep(0.3)
                        return
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the client gave up (timeout tests)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def script(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Canary:
    """Counts every TCP connection made to it (it never answers).

    A test asserts that nothing reached it with `assert canary.unreached()`,
    never by reading `connections` after a sleep: a canary that listened on
    the wrong port, or had not counted yet, would pass such a test.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.peers: list[tuple[str, int]] = []  # in the order accepted
        self._counted = threading.Condition()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._counted:
                self.connections += 1
                self.peers.append(peer[:2])
                self._counted.notify_all()
            conn.close()

    def unreached(self, timeout: float = 5.0) -> bool:
        """True when no connection came before the canary's own probe.

        Connects to the canary directly and waits until that connection is
        counted: that proves the canary listens on `port` and counts, and, as
        a listen queue is accepted in arrival order, that any connection made
        earlier (by the code under test) has been counted by then.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as probe:
            mine = probe.getsockname()[:2]
            with self._counted:
                if not self._counted.wait_for(lambda: mine in self.peers, timeout):
                    raise AssertionError(f"the canary did not see a direct connection within {timeout} s")
                return self.peers.index(mine) == 0

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def receiver():
    server = Receiver()
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_URLS=True):
        yield server
    server.close()


@pytest.fixture
def canary():
    listener = Canary()
    yield listener
    listener.close()


@pytest.fixture(autouse=True)
def _fresh_connections():
    """Kept-alive connections must not leak from one test's receiver to the next."""
    from webhooks.transport import close_idle_connections

    yield
    close_idle_connections()
