"""A real SMTP server on 127.0.0.1 that authenticates with AUTH XOAUTH2 only, as Gmail and Office 365 do.

`XOAuth2SmtpServer(oauth_server)` is the `SmtpServer` of tests/mailing
(same message store: `messages`, `raw`, `recipients()`, same refusals) whose
only AUTH mechanism is XOAUTH2, checked against the tokens `oauth_server`
issued: an active access token whose user is the `user=` of the response.
Anything else gets Google's error exchange: `334 <base64 JSON status>`, the
client's empty line, then `535 5.7.8`. With `tls=True` it offers STARTTLS
(a self-signed certificate, `cert` is its PEM and CA bundle) and refuses AUTH
before it. `auth_required` (default) refuses MAIL before a successful AUTH
with 530, as a submission server does. `authenticated` lists the user of
every successful AUTH.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import tempfile
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

from tests.inbound.dovecot import _self_signed
from tests.mailing.smtp_server import SmtpServer, _Handler
from tests.servers.oauth_server import OAuthServer


class _XOAuth2Handler(_Handler):
    def __init__(self, server: XOAuth2SmtpServer) -> None:
        super().__init__(server)
        self.oauth = server.oauth

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list):
        # aiosmtpd's own auth_required warns when TLS is not required too; this is the same 530.
        if self.server.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication Required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 2:
            blob = args[1]
            try:
                response = base64.b64decode(blob, validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode response")
        else:
            challenge = await smtp.challenge_auth("")
            if challenge is MISSING:
                return AuthResult(success=False, handled=True)
            response = challenge
        user, token = _parse(response)
        info = self.oauth.introspect(token) if token else {"active": False}
        if user and info.get("active") and info.get("email", "").lower() == user.lower():
            self.server.authenticated.append(user)
            return AuthResult(success=True, auth_data=user)
        # Google's XOAUTH2 error response: a JSON challenge the client answers with an empty line.
        error = json.dumps({"status": "401", "schemes": "Bearer", "scope": self.oauth.scope})
        answer = await smtp.challenge_auth(error)
        if answer is MISSING:  # the client aborted with "*": challenge_auth already answered 501
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")


def _parse(response: bytes) -> tuple[str, str]:
    """(user, bearer token) of an XOAUTH2 initial response; empty strings when malformed."""
    fields = dict(part.split("=", 1) for part in response.decode(errors="replace").split("\x01") if "=" in part)
    auth = fields.get("auth", "")
    scheme, _, token = auth.partition(" ")
    return fields.get("user", ""), token if scheme.lower() == "bearer" else ""


class XOAuth2SmtpServer(SmtpServer):
    def __init__(self, oauth: OAuthServer, *, tls: bool = False, auth_required: bool = True) -> None:
        super().__init__()
        self.oauth = oauth
        self.auth_required = auth_required
        self.authenticated: list[str] = []  # the user of every successful AUTH
        self.cert: Path | None = None
        self._dir: tempfile.TemporaryDirectory | None = None
        tls_context = None
        if tls:
            self._dir = tempfile.TemporaryDirectory(prefix="xoauth2-smtp-")
            self.cert, key = _self_signed(Path(self._dir.name))
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(self.cert, key)
        # Replace the plain controller of SmtpServer (never started) by one whose only mechanism is XOAUTH2.
        self.controller.loop.close()
        self.controller = Controller(
            _XOAuth2Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            auth_require_tls=tls,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            tls_context=tls_context,
            require_starttls=tls,
        )

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this server's certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    def stop(self) -> None:
        super().stop()
        self.controller.loop.close()  # aiosmtpd leaves its event loop open for a restart
        if self._dir is not None:
            self._dir.cleanup()


@pytest.fixture
def xoauth2_smtp(oauth_server):
    """A running `XOAuth2SmtpServer` (plain, AUTH required) trusting `oauth_server`'s tokens."""
    server = XOAuth2SmtpServer(oauth_server).start()
    yield server
    server.stop()
