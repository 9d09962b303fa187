"""The SMTP side of a send: one connection per credential for a chunk, and reply classification.

`open_connection` connects with the credential's `smtp_security` (`ssl`:
implicit TLS; `starttls`: upgrade, required; `none`: plain, for local sinks
and tests), logs in when a username and password are set, with
`MAILING_SMTP_TIMEOUT_SECONDS` on every socket operation.

Classification of a reply: 2xx accepted; 4xx temporary (retry later); 5xx
permanent (for RCPT/DATA: a bounce of that recipient).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl

from django.conf import settings

from campaigns.models import SmtpCredential

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


def open_connection(credential: SmtpCredential) -> smtplib.SMTP:
    """A connected, authenticated SMTP session. Raises `SmtpUnavailable` with the reason."""
    timeout = settings.MAILING_SMTP_TIMEOUT_SECONDS
    security = credential.smtp_security or ("ssl" if credential.smtp_port == 465 else "starttls")
    try:
        if security == SmtpCredential.Security.SSL:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                credential.smtp_host, credential.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = smtplib.SMTP(credential.smtp_host, credential.smtp_port, timeout=timeout)
        try:
            conn.ehlo()
            if security == SmtpCredential.Security.STARTTLS:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if credential.smtp_username and credential.smtp_password and conn.has_extn("auth"):
                conn.login(credential.smtp_username, credential.smtp_password)
        except BaseException:
            close_quietly(conn)
            raise
        return conn
    except smtplib.SMTPResponseException as exc:
        raise SmtpUnavailable(reply_text(exc.smtp_code, exc.smtp_error)) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpUnavailable(f"{type(exc).__name__}: {exc}"[:1000]) from exc


def close_quietly(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        with contextlib.suppress(OSError):
            conn.close()
