"""Building the MIME message for one send.

Pure apart from the tracking URLs: the sender (and trial_sends) pass everything
in. A message is multipart/alternative (text first, then HTML), both parts
UTF-8 and quoted-printable so no line exceeds SMTP's 998 octets, with CRLF
line ends, ready for `smtplib.SMTP.data`.

Headers: `Message-ID` on our domain (`MAILING_MESSAGE_ID_DOMAIN`), `Date`,
`From` (the credential's name and address), `To`, `Subject` (merge tags
rendered; line breaks impossible), `List-Unsubscribe` and
`List-Unsubscribe-Post` (RFC 8058, from `mailing.tracking`), and for steps 2+
`In-Reply-To` and `References` set to step 1's Message-ID, so the
follow-ups thread under the first message in the recipient's client.

The message is written out directly rather than through
`email.message.EmailMessage`: its header registry cost more than the SMTP
exchange itself, and the sender writes one message per send. ASCII headers
go out on one line (up to SMTP's 998 octets); any other is encoded (RFC 2047)
and folded by the `email` package's compat32 policy; bodies are encoded by
its `quoprimime`.
"""

from __future__ import annotations

import html as html_lib
import re
from email import policy, quoprimime
from email.header import Header
from email.utils import format_datetime, formataddr
from typing import Any

from django.conf import settings
from django.utils import timezone

from campaigns.templating import render_step
from core.ids import uuid7

from . import tracking


def message_id_new() -> str:
    """A fresh Message-ID with its angle brackets: `<hex@our-domain>`."""
    return f"<{uuid7().hex}@{settings.MAILING_MESSAGE_ID_DOMAIN}>"


# Folds and RFC 2047-encodes the headers that need it, with CRLF line ends.
_FOLDING = policy.compat32.clone(linesep="\r\n", max_line_length=78)
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
CRLF = "\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _header(name: str, value: str) -> str:
    """One header field, CRLF-terminated. Control characters never reach the wire (no header injection).

    ASCII values stay on one line up to SMTP's 998 octets (a long List-Unsubscribe URL folded
    after its colon reads back with a leading space); others are folded, and encoded where they
    are not ASCII or hold a word too long for any line.
    """
    value = _CONTROL.sub(" ", value)
    if value.isascii() and len(name) + len(value) <= 996:
        return f"{name}: {value}\r\n"
    folded = _FOLDING.fold(name, value)
    if max(map(len, folded.split("\r\n"))) > 998:  # a word too long to fold: encoded-words can be split
        encoded = Header(value, "utf-8", header_name=name).encode(linesep=CRLF)
        folded = f"{name}: {encoded}{CRLF}"
    return folded


def _quoted_printable(text: str) -> bytes:
    """`text` as UTF-8 quoted-printable with CRLF line ends, no line over 76 octets (RFC 2045).

    `quoprimime` encodes code points below 256, one per octet: hence the UTF-8
    bytes read as Latin-1. (`binascii.b2a_qp` lets a line ending in an encoded
    space reach 77.)
    """
    if not text.endswith("\n"):
        text += "\n"
    octets = _LINE_BREAKS.sub("\n", text).encode("utf-8").decode("latin-1")
    return quoprimime.body_encode(octets, maxlinelen=76, eol="\r\n").encode("ascii")


def _part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    ).encode("ascii") + _quoted_printable(text)


def _unsubscribe_footer(url: str) -> str:
    return (
        '<p style="font-size:12px;color:#888888;margin-top:24px">'
        f'<a href="{html_lib.escape(url)}" style="color:#888888">Unsubscribe</a></p>'
    )


def _insert_before_body_end(document: str, fragment: str) -> str:
    at = document.lower().rfind("</body")
    return document + fragment if at < 0 else document[:at] + fragment + document[at:]


def build_message(
    *,
    send: Any,
    step: Any,
    contact: Any,
    from_email: str,
    from_name: str,
    message_id: str,
    thread_message_id: str | None = None,
    track: bool = True,
    to: str | None = None,
) -> bytes:
    """The message bytes for `send` (a ScheduledSend, or a stand-in with `id` and `campaign`).

    `track`: add the open pixel, the click rewriting and the unsubscribe
    link and headers (the tracking URLs are signed with `send.id`). `to`:
    the recipient when it is not `contact.email` (test sends).
    """
    rendered = render_step(step, contact)
    body_html, body_text = rendered.html, rendered.text
    headers = [
        _header("Message-ID", message_id),
        _header("Date", format_datetime(timezone.now())),
        _header("From", formataddr((from_name, from_email)) if from_name else from_email),
        _header("To", to or contact.email),
        _header("Subject", rendered.subject),
    ]
    if thread_message_id:
        headers += [_header("In-Reply-To", thread_message_id), _header("References", thread_message_id)]
    if track:
        unsubscribe = tracking.unsubscribe_url(send)
        headers += [
            _header(name, value) for name, value in tracking.list_unsubscribe_headers(send, url=unsubscribe).items()
        ]
        body_html = tracking.rewrite_links(body_html, send)
        body_html = _insert_before_body_end(body_html, _unsubscribe_footer(unsubscribe))
        body_html = tracking.insert_open_pixel(body_html, send)
        body_text = f"{body_text}\n\n--\nUnsubscribe: {unsubscribe}\n"
    # "=_" never occurs in quoted-printable text, so the boundary cannot collide with a body.
    boundary = f"=_{message_id.strip('<>').partition('@')[0]}"
    headers += ["MIME-Version: 1.0\r\n", f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n']
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return b"".join(
        [
            "".join(headers).encode("ascii"),
            delimiter,
            _part("plain", body_text),
            delimiter,
            _part("html", body_html),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )
