"""Raw test messages: replies, auto-replies, Exchange out-of-office, DSNs (RFC 3464)."""

import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.utils import timezone


def reply(
    sender,
    *,
    in_reply_to=None,
    references=None,
    subject="Re: Quick question",
    body="Sounds good, call me.",
    headers=None,
    message_id=None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Lead <{sender}>"
    msg["To"] = "replies@example.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = message_id or make_msgid(domain="mail.example.org")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(f"{body}\n\nOn Mon, 20 Nov 2026 Sender wrote:\n> Hi there\n> quoted text\n")
    return msg.as_bytes()


def dsn(
    recipient,
    *,
    original_message_id,
    status="5.1.1",
    action="failed",
    diagnostic="smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
    returned="headers",
) -> bytes:
    """A bounce as Postfix writes it: the facts are in its parts, not in its top-level headers."""
    boundary = f"dsn-{uuid.uuid4().hex}"
    original = (
        f"From: sender@example.com\r\nTo: {recipient}\r\nSubject: Quick question\r\n"
        f"Message-ID: {original_message_id}\r\n"
    )
    if returned == "headers":
        returned_part = f"Content-Type: text/rfc822-headers\r\n\r\n{original}"
    else:
        returned_part = f"Content-Type: message/rfc822\r\n\r\n{original}Content-Type: text/plain\r\n\r\nHello!\r\n"
    raw = (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        "To: replies@example.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(timezone.now())}\r\n"
        f"Message-ID: <{uuid.uuid4()}@mx.example.org>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\nArrival-Date: Mon, 20 Nov 2026 10:00:00 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\nAction: {action}\r\n"
        f"Status: {status}\r\nRemote-MTA: dns; mx2.example.org\r\n"
        f"Diagnostic-Code: {diagnostic.format(rcpt=recipient)}\r\n"
        f"--{boundary}\r\n"
        f"{returned_part}"
        f"--{boundary}--\r\n"
    )
    return raw.encode()
