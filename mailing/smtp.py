"""The SMTP side of a send: one connection per mailbox for a chunk, and reply classification.

`open_connection` connects with the mailbox's `smtp_security` (`ssl`:
implicit TLS; `starttls`: upgrade, required; `none`: plain, for local sinks
and tests), logs in when a username and password are set, with
`MAILING_SMTP_TIMEOUT_SECONDS` on every socket operation.

Classification of a reply: 2xx accepted; 4xx temporary (retry later); 5xx
permanent (for RCPT/DATA: a bounce of that recipient).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import smtplib
import socket
import ssl

from django.conf import settings

from mailboxes import oauth
from mailboxes.models import Mailbox
from mailboxes.services import mailbox_access_token_refused
from webhooks.urlsafety import address_problem

from .services import mailbox_sign_in_token

ACCEPTED, TEMPORARY, PERMANENT = "accepted", "temporary", "permanent"


class SmtpUnavailable(Exception):
    """Connecting, TLS or login failed: nothing was handed to the server (safe to retry)."""


def classify(code: int) -> str:
    if 200 <= code < 300:
        return ACCEPTED
    if 400 <= code < 500:
        return TEMPORARY
    return PERMANENT


def reply_text(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"[:1000]


class HostRefused(OSError):
    """The credential's host resolves to an address we do not connect to (SSRF protection)."""


def checked_address(host: str, port: int) -> str:
    """The address to connect to for `host`: resolved once, every address checked.

    Unless `MAILING_ALLOW_PRIVATE_HOSTS`, a host resolving to a loopback,
    private, link-local (cloud metadata), CGNAT, multicast or reserved address
    is refused, so a tenant's SMTP or IMAP credential cannot reach our network.
    The caller connects to the returned address, so a second, different DNS
    answer (rebinding) is never used.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not settings.MAILING_ALLOW_PRIVATE_HOSTS:
        for address in addresses:
            problem = address_problem(ipaddress.ip_address(address.split("%", 1)[0]))
            if problem:
                raise HostRefused(f"{host} resolves to {address}, {problem}: refused")
    return addresses[0]


class _PinnedSMTP(smtplib.SMTP):
    """smtplib.SMTP connected to a checked address; TLS still verifies the host name."""

    def __init__(self, address: str, host: str, port: int, timeout: float) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host, port, timeout):
        return socket.create_connection((self._address, port), timeout, self.source_address)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    def __init__(self, address: str, host: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((self._address, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._host)


def _authenticate(conn: smtplib.SMTP, mailbox: Mailbox) -> None:
    """Log in with the mailbox's password, or with XOAUTH2 and a fresh access token (OAuth2 mailboxes)."""
    if mailbox.is_oauth2:
        try:
            oauth.smtp_xoauth2_auth(conn, mailbox.smtp_username, mailbox_sign_in_token(mailbox=mailbox))
        except smtplib.SMTPAuthenticationError:
            mailbox_access_token_refused(mailbox=mailbox)  # the retry refreshes it, or finds the grant revoked
            raise
    elif mailbox.smtp_username and mailbox.smtp_password and conn.has_extn("auth"):
        conn.login(mailbox.smtp_username, mailbox.smtp_password)


def open_connection(mailbox: Mailbox) -> smtplib.SMTP:
    """A connected, authenticated SMTP session. Raises `SmtpUnavailable` with the reason.

    An OAuth2 mailbox whose grant was revoked is disabled everywhere
    (`mailbox_sign_in_token`, with a reason that says to reconnect it) before this raises.
    """
    timeout = settings.MAILING_SMTP_TIMEOUT_SECONDS
    security = mailbox.smtp_security or ("ssl" if mailbox.smtp_port == 465 else "starttls")
    try:
        address = checked_address(mailbox.smtp_host, mailbox.smtp_port)
        if security == Mailbox.Security.SSL:
            conn: smtplib.SMTP = _PinnedSMTPSSL(
                address, mailbox.smtp_host, mailbox.smtp_port, timeout, ssl.create_default_context()
            )
        else:
            conn = _PinnedSMTP(address, mailbox.smtp_host, mailbox.smtp_port, timeout)
        try:
            conn.ehlo()
            if security == Mailbox.Security.STARTTLS:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            _authenticate(conn, mailbox)
        except BaseException:
            close_quietly(conn)
            raise
        return conn
    except oauth.OAuthRevoked as exc:  # the mailbox is disabled already (`mailbox_sign_in_token`)
        raise SmtpUnavailable(f"OAuth2 grant revoked: {exc}") from exc
    except oauth.OAuthUnavailable as exc:
        raise SmtpUnavailable(f"OAuth2 token refresh failed: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        raise SmtpUnavailable(reply_text(exc.smtp_code, exc.smtp_error)) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpUnavailable(f"{type(exc).__name__}: {exc}"[:1000]) from exc


# A plain address: printable ASCII without spaces, brackets or quotes (contacts' and senders' addresses
# are validated on the way in; anything else takes smtplib's own quoting).
_PLAIN_ADDRESS = re.compile(r"[!#-'*-;=?-Z^-~]+@[!#-'*-;=?-Z^-~]+")


def envelope(conn: smtplib.SMTP, sender: str, recipient: str) -> tuple[str, int, bytes]:
    """MAIL FROM `sender`, then RCPT TO `recipient` unless refused: (command, code, reply) of the last one.

    smtplib's `mail` and `rcpt` parse each address with the email package's
    header parser, which cost more than the command's round trip; plain
    addresses go out as they are. A non-ASCII address needs the server's
    SMTPUTF8 (RFC 6531); without it the recipient is refused permanently
    (553 5.6.7), as the server itself would.
    """
    if not (sender + recipient).isascii():
        if not conn.has_extn("smtputf8"):
            return "RCPT TO", 553, b"5.6.7 Non-ASCII address, and the server does not offer SMTPUTF8"
        code, message = conn.mail(sender, ["SMTPUTF8"])  # smtplib then sends its commands in UTF-8
    elif _PLAIN_ADDRESS.fullmatch(sender):
        code, message = conn.docmd("mail", f"FROM:<{sender}>")
    else:
        code, message = conn.mail(sender)
    if classify(code) != ACCEPTED:
        return "MAIL FROM", code, message
    if _PLAIN_ADDRESS.fullmatch(recipient):
        code, message = conn.docmd("rcpt", f"TO:<{recipient}>")
    else:
        code, message = conn.rcpt(recipient)
    return "RCPT TO", code, message


def close_quietly(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        with contextlib.suppress(OSError):
            conn.close()
