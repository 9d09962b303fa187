"""Writes on the send outbox that other apps call: canceling an enrollment's
remaining sends, and the per-credential bounce-rate guard.

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
    """(messages sent, bounces) through one credential: the guard's denominator and numerator.

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


def smtp_credential_disable(*, credential: SmtpCredential, reason: str) -> bool:
    """Disable the credential (once) and move its future sends to the campaign's other enabled ones.

    Records `smtp_credential.disabled`. With no other enabled credential the
    sends keep theirs and wait (the beat tick does not claim a disabled
    credential's rows) until it is re-enabled. Returns False when it was
    already disabled.
    """
    now = timezone.now()
    with transaction.atomic():
        moved = SmtpCredential.objects.filter(pk=credential.pk, disabled_at__isnull=True).update(
            disabled_at=now, disabled_reason=reason[:255], updated_at=now
        )
        if not moved:
            return False
        credential.refresh_from_db(fields=["disabled_at", "disabled_reason", "updated_at"])
        scheduled_sends_reassign(from_credential=credential)
        webhook_event_record(
            account=credential.campaign.account,
            type=events.SMTP_CREDENTIAL_DISABLED,
            data={
                "id": str(credential.pk),
                "name": credential.label or credential.from_email,
                "from_email": credential.from_email,
                "reason": credential.disabled_reason,
                "disabled_at": credential.disabled_at,
            },
        )
    return True


def scheduled_sends_reassign(*, from_credential: SmtpCredential) -> int:
    """Spread the credential's not-yet-claimed sends over the campaign's enabled credentials.

    An enrollment keeps one credential for all its remaining steps (its
    follow-ups thread under the first message from the same mailbox), so the
    round-robin is per enrollment. Returns the rows moved (0 when no other
    credential is enabled: the rows wait for this one).
    """
    others = list(
        SmtpCredential.objects.filter(campaign_id=from_credential.campaign_id, disabled_at__isnull=True)
        .exclude(pk=from_credential.pk)
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
    """Disable the credential when its bounce rate reaches its campaign's threshold.

    Bounce rate = bounces / messages sent through the credential
    (`smtp_credential_messages_and_bounces`), looked at from
    `BOUNCE_GUARD_MIN_SENDS` messages on, compared with the campaign's
    `bounce_rate_threshold` (a percentage; at or above disables). Returns True
    when this call disabled it; False when under the threshold, too few
    sends, unknown, or already disabled.
    """
    credential = (
        SmtpCredential.objects.select_related("campaign__account")
        .filter(pk=smtp_credential_id, disabled_at__isnull=True)
        .first()
    )
    if credential is None:
        return False
    messages, bounces = smtp_credential_messages_and_bounces(smtp_credential_id=credential.pk)
    if messages < BOUNCE_GUARD_MIN_SENDS:
        return False
    rate = 100.0 * bounces / messages
    if rate < credential.campaign.bounce_rate_threshold:
        return False
    reason = (
        f"Bounce rate {rate:.1f}% ({bounces} of {messages} messages) reached the campaign's "
        f"threshold of {credential.campaign.bounce_rate_threshold:g}%."
    )
    return smtp_credential_disable(credential=credential, reason=reason)


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
