"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), with scripted refusals.

`SmtpServer.start()` listens on a free port; every accepted message is kept
(`messages`: envelope sender, recipients, parsed message). Refusals:
`reject` (recipients answered `550 5.1.1` at RCPT), `tempfail`
(recipients answered `421 4.3.2` at RCPT), `data_reject` (recipients whose
DATA is refused with 554), `hold` (an Event the DATA handler waits on before
answering, once `hold_after` messages were accepted: lets a test kill a worker mid-send).
"""

from __future__ import annotations

import socket
import threading
import time
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.server.reject or "*" in self.server.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.server.tempfail or "*" in self.server.tempfail:
            return "421 4.3.2 Service not available, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        hold = self.server.hold
        if hold is not None and len(self.server.messages) >= self.server.hold_after:
            self.server.arrived.set()
            while not hold.is_set():  # the event loop thread; a short poll keeps it simple
                time.sleep(0.01)
        if any(r in self.server.data_reject for r in envelope.rcpt_tos):
            return "554 5.7.1 Message rejected as spam"
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        with self.server.lock:
            self.server.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
            self.server.raw.append(envelope.original_content)
        return "250 2.0.0 Ok: queued"


def _accept_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)


class SmtpServer:
    def __init__(self, *, smtputf8: bool = False) -> None:
        self.messages: list = []
        self.raw: list[bytes] = []  # each message as it arrived (after the SMTP dot-unstuffing)
        self.reject: set[str] = set()
        self.tempfail: set[str] = set()
        self.data_reject: set[str] = set()
        self.hold: threading.Event | None = None
        self.hold_after = 0  # messages accepted before DATA starts holding
        self.arrived = threading.Event()
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=_accept_login,
            auth_require_tls=False,
            enable_SMTPUTF8=smtputf8,
        )

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.controller.stop()

    def recipients(self) -> list[str]:
        with self.lock:
            return [rcpt for _, rcpts, _ in self.messages for rcpt in rcpts]
