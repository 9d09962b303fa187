"""Writes on the send outbox that other apps call: canceling an enrollment's
remaining sends, the per-campaign bounce-rate guard, and disabling a mailbox everywhere.

Both are part of the contract with inbound events (issue 6): a reply, an
unsubscribe or an async bounce stops the sequence through
`scheduled_sends_cancel_for_enrollment`, and every bounce ends with
`smtp_credential_check_bounce_rate` for the credential concerned.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import SmtpCredential
from enrollments.models import Enrollment
from enrollments.services import enrollment_transition
from mailboxes import oauth
from mailboxes.models import Mailbox
from mailboxes.services import mailbox_access_token, mailbox_mark_disabled, revoked_reason
from webhooks import events
from webhooks.services import webhook_event_record

from .models import ScheduledSend
from .selectors import smtp_credentials_messages_sent

Status = ScheduledSend.Status

# Statuses a send can still be stopped in: nothing has been handed to a server yet.
CANCELABLE = (Status.SCHEDULED, Status.QUEUED)
# The guard looks at a credential only once it has sent this many messages.
BOUNCE_GUARD_MIN_SENDS = 20


def scheduled_sends_cancel_for_enrollment(*, enrollment_id: int, reason: str) -> int:
    """Cancel every send of the enrollment that has not started (`scheduled` or `queued`).

    A `queued` row is canceled too: its worker re-checks the row's status with
    a conditional UPDATE before sending and finds it gone. Rows already
    `sending`, `sent` or in a final state are left alone. Returns how many
    rows were canceled (0 when called twice).
    """
    with transaction.atomic():
        return ScheduledSend.objects.filter(enrollment_id=enrollment_id, status__in=CANCELABLE).update(
            status=Status.CANCELED,
            last_error=(reason or "")[:1000],
            claimed_by="",
            lease_until=None,
            updated_at=timezone.now(),
        )


def smtp_credential_messages_and_bounces(*, smtp_credential_id: Any) -> tuple[int, int]:
    """(messages sent, bounces) of one campaign through one mailbox: the guard's denominator and numerator.

    Messages: every message handed to the server through the credential, all
    steps (the per-day `sent` + `bounced` counters, kept by the sender in the
    outcome's transaction, and the sent messages whose counting is still
    pending in a worker's batch). Bounces: the enrollments recorded against the
    credential that bounced, synchronously (5xx) or later (DSN, provider
    webhook); an enrollment bounced at dispatch for having no MX never went
    through a credential and is not counted.
    """
    # Pending first: a batch applied in between is then counted twice (a lower rate), never missed.
    messages = ScheduledSend.objects.filter(smtp_credential_id=smtp_credential_id, outcome_pending=True).count()
    messages += sum(smtp_credentials_messages_sent(credential_ids=[smtp_credential_id]).values())
    bounces = Enrollment.objects.filter(smtp_credential_id=smtp_credential_id, status=Enrollment.Status.BOUNCED).count()
    return messages, bounces


def mailbox_disable(*, mailbox_id: Any, reason: str) -> bool:
    """Disable the mailbox (once) everywhere, and move each campaign's future sends to its other mailboxes.

    Records `mailbox.disabled`, and `smtp_credential.disabled` for each
    campaign using it. A campaign with no other enabled mailbox keeps its
    sends, which wait (the beat tick does not claim a disabled mailbox's
    rows) until the mailbox is re-enabled. Returns False when it was
    already disabled.
    """
    with transaction.atomic():
        if not mailbox_mark_disabled(mailbox_id=mailbox_id, reason=reason):
            return False
        mailbox = Mailbox.objects.select_related("account").get(pk=mailbox_id)
        credentials = list(
            SmtpCredential.objects.filter(mailbox=mailbox).select_related("campaign").order_by("created_at", "id")
        )
        for credential in credentials:
            scheduled_sends_reassign(from_credential=credential)
            webhook_event_record(
                account=mailbox.account,
                type=events.SMTP_CREDENTIAL_DISABLED,
                data={
                    "id": str(credential.pk),
                    "campaign_id": str(credential.campaign_id),
                    "mailbox_id": str(mailbox.pk),
                    "name": credential.label or mailbox.email,
                    "from_email": mailbox.email,
                    "reason": mailbox.disabled_reason,
                    "disabled_at": mailbox.disabled_at,
                },
            )
        webhook_event_record(
            account=mailbox.account,
            type=events.MAILBOX_DISABLED,
            data={
                "id": str(mailbox.pk),
                "email": mailbox.email,
                "reason": mailbox.disabled_reason,
                "disabled_at": mailbox.disabled_at,
                "campaign_ids": sorted({str(c.campaign_id) for c in credentials}),
            },
        )
    return True


def mailbox_sign_in_token(*, mailbox: Mailbox) -> str:
    """A current OAuth2 access token for sending or polling (`mailbox_access_token`).

    A revoked grant disables the mailbox everywhere, with a reason that says
    to reconnect it, then raises `oauth.OAuthRevoked`; `oauth.OAuthUnavailable`
    passes through (try again later).
    """
    try:
        return mailbox_access_token(mailbox=mailbox)
    except oauth.OAuthRevoked as exc:
        mailbox_disable(mailbox_id=mailbox.pk, reason=revoked_reason(mailbox, exc))
        raise


def scheduled_sends_reassign(*, from_credential: SmtpCredential) -> int:
    """Spread the credential's not-yet-claimed sends over the campaign's credentials with an enabled mailbox.

    An enrollment keeps one credential for all its remaining steps (its
    follow-ups thread under the first message from the same mailbox), so the
    round-robin is per enrollment. Returns the rows moved (0 when no other
    mailbox of the campaign is enabled: the rows wait for this one).
    """
    others = list(
        SmtpCredential.objects.filter(campaign_id=from_credential.campaign_id, mailbox__disabled_at__isnull=True)
        .exclude(pk=from_credential.pk)
        .exclude(mailbox_id=from_credential.mailbox_id)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
    )
    if not others:
        return 0
    with transaction.atomic():
        enrollment_ids = list(
            ScheduledSend.objects.filter(smtp_credential=from_credential, status=Status.SCHEDULED)
            .values_list("enrollment_id", flat=True)
            .distinct()
            .order_by("enrollment_id")
        )
        moved = 0
        for index, target in enumerate(others):
            share = enrollment_ids[index :: len(others)]
            if not share:
                continue
            moved += ScheduledSend.objects.filter(
                smtp_credential=from_credential, status=Status.SCHEDULED, enrollment_id__in=share
            ).update(smtp_credential_id=target, updated_at=timezone.now())
            Enrollment.objects.filter(pk__in=share, sent_at__isnull=True).filter(
                Q(smtp_credential=from_credential)
            ).update(smtp_credential_id=target)
        return moved


def smtp_credential_check_bounce_rate(*, smtp_credential_id: Any) -> bool:
    """Disable the credential's mailbox, everywhere, when this campaign's bounce rate through it reaches its threshold.

    Bounce rate = this campaign's bounces / its messages through the mailbox
    (`smtp_credential_messages_and_bounces`), looked at from
    `BOUNCE_GUARD_MIN_SENDS` messages on, compared with the campaign's
    `bounce_rate_threshold` (a percentage; at or above disables). Each
    campaign's threshold judges its own sends; the first one crossed
    disables the mailbox for all of them, and the reason names it. Returns
    True when this call disabled it; False when under the threshold, too
    few sends, unknown, or already disabled.
    """
    credential = (
        SmtpCredential.objects.select_related("campaign", "mailbox")
        .filter(pk=smtp_credential_id, mailbox__disabled_at__isnull=True)
        .first()
    )
    if credential is None:
        return False
    messages, bounces = smtp_credential_messages_and_bounces(smtp_credential_id=credential.pk)
    if messages < BOUNCE_GUARD_MIN_SENDS:
        return False
    rate = 100.0 * bounces / messages
    threshold = credential.campaign.bounce_rate_threshold
    if rate < threshold:
        return False
    noun = "journey" if credential.campaign.kind == "journey" else "campaign"
    reason = (
        f'Bounce rate {rate:.1f}% ({bounces} of {messages} messages) of {noun} "{credential.campaign.name}" '
        f"reached its threshold of {threshold:g}%."
    )
    return mailbox_disable(mailbox_id=credential.mailbox_id, reason=reason)


def enrollment_bounce(
    *,
    enrollment_id: int,
    reason: str,
    at: datetime.datetime,
    step: int | None = None,
    smtp_credential_id: Any = None,
) -> Enrollment | None:
    """A bounce, whether the server refused the message (5xx) or reported it later (DSN, provider webhook).

    Moves the enrollment to `bounced` when the state machine allows (recording
    the credential the message went through, which the bounce-rate guard
    counts by), and cancels its remaining sends either way: the address takes
    no mail. Returns the enrollment when it moved, else None.
    """
    with transaction.atomic():
        moved = enrollment_transition(
            enrollment_id=enrollment_id,
            to=Enrollment.Status.BOUNCED,
            at=at,
            bounce_reason=reason,
            step=step,
            smtp_credential_id=smtp_credential_id,
        )
        scheduled_sends_cancel_for_enrollment(enrollment_id=enrollment_id, reason="bounced")
    return moved
