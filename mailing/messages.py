"""Building the MIME message for one send.

Pure apart from the tracking URLs: the sender (and test_send) pass everything
in. A message is multipart/alternative (text first, then HTML), both parts
quoted-printable so no line exceeds SMTP's 998 octets, serialized with
CRLF line ends (`policy.SMTP`), ready for `smtplib.SMTP.data`.

Headers: `Message-ID` on our domain (`MAILING_MESSAGE_ID_DOMAIN`), `Date`,
`From` (the credential's name and address), `To`, `Subject` (merge tags
rendered; line breaks impossible), `List-Unsubscribe` and
`List-Unsubscribe-Post` (RFC 8058, from `mailing.tracking`), and for steps 2+
`In-Reply-To` and `References` set to step 1's Message-ID, so the
follow-ups thread under the first message in the recipient's client.
"""

from __future__ import annotations

import html as html_lib
from email import policy
from email.message import EmailMessage
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
    msg = EmailMessage(policy=policy.SMTP)
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(timezone.now())
    msg["From"] = formataddr((from_name, from_email)) if from_name else from_email
    msg["To"] = to or contact.email
    msg["Subject"] = rendered.subject
    if thread_message_id:
        msg["In-Reply-To"] = thread_message_id
        msg["References"] = thread_message_id
    if track:
        unsubscribe = tracking.unsubscribe_url(send)
        for name, value in tracking.list_unsubscribe_headers(send).items():
            msg[name] = value
        body_html = tracking.rewrite_links(body_html, send)
        body_html = _insert_before_body_end(body_html, _unsubscribe_footer(unsubscribe))
        body_html = tracking.insert_open_pixel(body_html, send)
        body_text = f"{body_text}\n\n--\nUnsubscribe: {unsubscribe}\n"
    msg.set_content(body_text, cte="quoted-printable")
    msg.add_alternative(body_html, subtype="html", cte="quoted-printable")
    return msg.as_bytes()
