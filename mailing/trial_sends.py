"""Test send: every step of a campaign, now, to up to 10 addresses of the operator's.

The one place email leaves during a request (CONVENTIONS: "email is never
sent inside a request" is about campaign mail, which goes through the
outbox): a preview must answer what the server did with it, and it touches
no enrollment, no outbox row and no limit. Bounded: at most 10 addresses times
the campaign's steps over one connection with `MAILING_SMTP_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import smtplib
from types import SimpleNamespace
from typing import Any

from campaigns.models import Campaign, SequenceStep, SmtpCredential
from campaigns.services import campaign_require_complete
from contacts.models import Contact
from core.errors import ApplicationError
from core.ids import uuid7

from .messages import build_message, message_id_new
from .smtp import SmtpUnavailable, close_quietly, open_connection, reply_text


def _merge_contact(campaign: Campaign, email: str) -> Any:
    contact = Contact.objects.filter(account_id=campaign.account_id, email__iexact=email).first()
    return contact or SimpleNamespace(email=email, first_name="", last_name="", company="", custom_fields={})


def campaign_test_send(*, campaign: Campaign, emails: list[str]) -> dict[str, Any]:
    """Send each step to each address through the first credential with an enabled mailbox; report every message.

    Merge tags come from the account's contact with the first address (or
    that address alone). Steps 2+ thread under step 1, as real follow-ups do.
    Raises 422 `campaign_incomplete` (no step or credential, or one not ready), 422
    `no_capacity` (every mailbox disabled), 502 `smtp_unavailable`.
    """
    steps = list(SequenceStep.objects.filter(campaign=campaign).order_by("position"))
    credentials = list(
        SmtpCredential.objects.filter(campaign=campaign).select_related("mailbox").order_by("created_at", "id")
    )
    campaign_require_complete(steps=steps, credentials=credentials)
    credential = next((c for c in credentials if c.mailbox.disabled_at is None), None)
    if credential is None:
        raise ApplicationError("Every mailbox of the campaign is disabled.", code="no_capacity")
    mailbox = credential.mailbox
    contact = _merge_contact(campaign, emails[0])
    try:
        conn = open_connection(mailbox)
    except SmtpUnavailable as exc:
        raise ApplicationError(
            f"The SMTP server could not be used: {exc}", code="smtp_unavailable", status_code=502
        ) from None
    results = []
    try:
        for email in emails:
            thread = None
            for step in steps:
                message_id = message_id_new()
                data = build_message(
                    send=SimpleNamespace(id=uuid7(), campaign=campaign),
                    step=step,
                    contact=contact,
                    to=email,
                    from_email=mailbox.email,
                    from_name=mailbox.from_name,
                    message_id=message_id,
                    thread_message_id=thread,
                )
                try:
                    refused = conn.sendmail(mailbox.email, [email], data)
                    error = reply_text(*refused[email]) if refused else ""
                except smtplib.SMTPRecipientsRefused as exc:
                    error = reply_text(*exc.recipients[email])
                    conn.rset()
                except smtplib.SMTPResponseException as exc:
                    error = reply_text(exc.smtp_code, exc.smtp_error)
                    conn.rset()
                thread = thread or message_id
                results.append(
                    {
                        "email": email,
                        "step": step.position,
                        "subject": _subject_of(data),
                        "message_id": message_id,
                        "accepted": not error,
                        "error": error,
                    }
                )
    except (OSError, smtplib.SMTPException) as exc:
        raise ApplicationError(f"The SMTP connection failed: {exc}", code="smtp_unavailable", status_code=502) from None
    finally:
        close_quietly(conn)
    return {"smtp_credential_id": credential.pk, "messages": results}


def _subject_of(data: bytes) -> str:
    from email import message_from_bytes, policy

    return str(message_from_bytes(data, policy=policy.default)["Subject"])
