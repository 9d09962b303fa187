"""Writes for what comes back after a send: opens, clicks, unsubscribes, replies, bounces.

Every status change goes through the enrollment state machine
(`enrollments.services`), so a late or repeated event changes nothing and
emits nothing. A reply or a bounce also cancels the enrollment's later sends
(`mailing.services.scheduled_sends_cancel_for_enrollment`); an unsubscribe is
`mailing.subscriptions.contact_unsubscribe`, the one the contacts API and admin
call too. An async bounce then runs the sending engine's bounce-rate guard
for the credential that sent the message.

The open rule (documented in the README): a pixel load counts as the first
open unless it comes from a known image proxy or prefetcher (Apple Mail
Privacy Protection's bare `Mozilla/5.0`, Google's and Yahoo's image proxies,
link scanners such as Mimecast, Proofpoint, Barracuda, Microsoft's
Safe Links / BingPreview, or no User-Agent at all) within
`OPEN_PREFETCH_WINDOW_SECONDS` (default 60) of the send. Such loads are
recorded with `counted=False` and change nothing. The same proxies later,
outside that window, do count: that is when Gmail's proxy fetches images
for a person opening the message.
"""

from __future__ import annotations

import datetime
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from contacts.models import Contact
from enrollments.models import Enrollment
from enrollments.services import enrollment_transition
from mailing import services as mailing_services
from mailing.models import ScheduledSend
from mailing.outcomes import sent_outcomes_settle
from mailing.subscriptions import contact_unsubscribe

from .models import InboundMessage, ProviderEvent, TrackingEvent

logger = logging.getLogger(__name__)

_PREFETCHERS = re.compile(
    r"^Mozilla/5\.0$|GoogleImageProxy|ggpht\.com|YahooMailProxy|Mimecast|Proofpoint|Barracuda|"
    r"BingPreview|Safe ?Links|MSOffice.*Protocol Discovery|Symantec|MessageLabs|Forcepoint|"
    r"Trend ?Micro|SpamTitan|python-requests|Go-http-client|curl/|Wget",
    re.IGNORECASE,
)


def is_prefetch(*, user_agent: str, sent_at: datetime.datetime | None, at: datetime.datetime) -> bool:
    """A hit by a known proxy/prefetcher (or with no User-Agent) within the prefetch window of the send."""
    if sent_at is None:
        return False
    window = datetime.timedelta(seconds=settings.OPEN_PREFETCH_WINDOW_SECONDS)
    if at - sent_at > window:
        return False
    agent = (user_agent or "").strip()
    return not agent or bool(_PREFETCHERS.search(agent))


def _send_facts(send_id: uuid.UUID) -> tuple[int, datetime.datetime | None, int, str, str] | None:
    """(enrollment id, sent_at, step position, enrollment status, send status) of a send, in one query.

    A send whose consequences the worker has not applied yet gets them first
    (`sent_outcomes_settle`): what comes back about a message finds its enrollment `sent`.
    """
    facts = (
        ScheduledSend.objects.filter(pk=send_id)
        .values_list("enrollment_id", "sent_at", "step__position", "enrollment__status", "status", "outcome_pending")
        .first()
    )
    if facts is not None and facts[5]:
        sent_outcomes_settle(enrollment_ids=[facts[0]])
        return _send_facts(send_id)
    return None if facts is None else facts[:5]


def tracking_open_record(
    *, send_id: uuid.UUID, user_agent: str = "", ip: str | None = None, at: datetime.datetime | None = None
) -> bool | None:
    """Record a pixel load; True when it was the enrollment's first open (sent → opened).

    Loads after the first open, or for an unknown send, write nothing. None: the
    send is still `sending` (the server took it, the worker has not written so
    yet): the caller tries again later.
    """
    at = at or timezone.now()
    facts = _send_facts(send_id)
    if facts is None:
        return False
    enrollment_id, sent_at, position, status, send_status = facts
    if send_status == ScheduledSend.Status.SENDING:
        return None
    if status != Enrollment.Status.SENT:
        return False
    event = TrackingEvent(
        kind=TrackingEvent.Kind.OPEN,
        scheduled_send_id=send_id,
        enrollment_id=enrollment_id,
        user_agent=user_agent[:512],
        ip=ip,
        created_at=at,
    )
    if is_prefetch(user_agent=user_agent, sent_at=sent_at, at=at):
        event.counted = False
        event.save(force_insert=True)
        return False
    with transaction.atomic():
        moved = enrollment_transition(enrollment_id=enrollment_id, to=Enrollment.Status.OPENED, at=at, step=position)
        if moved is not None:
            event.save(force_insert=True)
    return moved is not None


def tracking_click_record(
    *, send_id: uuid.UUID, url: str, user_agent: str = "", ip: str | None = None, at: datetime.datetime | None = None
) -> bool:
    """Record a click (every one); it also counts as the open when the enrollment is still `sent`.

    Returns whether the click counted (not a prefetcher within the window).
    """
    at = at or timezone.now()
    facts = _send_facts(send_id)
    if facts is None:
        return False
    enrollment_id, sent_at, position, status, _ = facts
    counted = not is_prefetch(user_agent=user_agent, sent_at=sent_at, at=at)
    with transaction.atomic():
        TrackingEvent.objects.create(
            kind=TrackingEvent.Kind.CLICK,
            scheduled_send_id=send_id,
            enrollment_id=enrollment_id,
            counted=counted,
            url=url,
            user_agent=user_agent[:512],
            ip=ip,
            created_at=at,
        )
        if counted and status == Enrollment.Status.SENT:
            enrollment_transition(enrollment_id=enrollment_id, to=Enrollment.Status.OPENED, at=at, step=position)
    return counted


def _contact_unsubscribe_from_send(
    *, send: ScheduledSend, source: str, at: datetime.datetime, settled: bool = False
) -> bool:
    """`contact_unsubscribe` for the contact a send went to, and the unsubscribe recorded against the send.

    The tracking event is written only when something changed, so a repeated
    unsubscribe leaves one. Returns whether anything changed.
    """
    with transaction.atomic():
        contact = Contact.objects.get(enrollments__pk=send.enrollment_id)
        changed = contact_unsubscribe(contact=contact, at=at, settled=settled)
        if changed:
            TrackingEvent.objects.create(
                kind=TrackingEvent.Kind.UNSUBSCRIBE,
                scheduled_send_id=send.pk,
                enrollment_id=send.enrollment_id,
                url=source,
                created_at=at,
            )
    return changed


def tracking_unsubscribe_record(*, send_id: uuid.UUID, source: str, at: datetime.datetime | None = None) -> bool | None:
    """Unsubscribe the contact a send went to, through its unsubscribe link (`source`: "page" or "one-click").

    None for an unknown send (gone with its campaign); else whether anything changed.
    """
    send = ScheduledSend.objects.filter(pk=send_id).only("pk", "enrollment_id").first()
    if send is None:
        return None
    return _contact_unsubscribe_from_send(send=send, source=source, at=at or timezone.now())


def _bounce_guard(smtp_credential_id: Any) -> None:
    if smtp_credential_id is not None:
        mailing_services.smtp_credential_check_bounce_rate(smtp_credential_id=smtp_credential_id)


def _send_credential_id(send: ScheduledSend | None, enrollment_id: int | None) -> Any:
    if send is not None and send.smtp_credential_id is not None:
        return send.smtp_credential_id
    if enrollment_id is None:
        return None
    return Enrollment.objects.filter(pk=enrollment_id).values_list("smtp_credential_id", flat=True).first()


@dataclass
class InboundFacts:
    """What reply detection learned about one message, ready to be recorded."""

    message_id: str
    kind: str  # InboundMessage.Kind
    matched_by: str
    from_email: str
    subject: str
    received_at: datetime.datetime
    snippet: str = ""
    auto_reply_reason: str = ""
    dsn_recipient: str = ""
    dsn_status: str = ""
    dsn_diagnostic: str = ""
    imap_uid: int | None = None


def inbound_message_record(
    *, facts: InboundFacts, mailbox_id: Any, smtp_credential_id: Any, send: ScheduledSend | None, enrollment_id: int
) -> InboundMessage | None:
    """Store one matched inbound message and apply it; None when the mailbox's Message-ID was already stored.

    A reply moves the enrollment to `replied` and cancels its later sends; an
    auto-reply and a 4.x.x DSN are recorded only; a 5.x.x DSN bounces the
    enrollment and then runs the bounce-rate guard for the sending credential.
    """
    kind = facts.kind
    bounced = False
    with transaction.atomic():
        try:
            with transaction.atomic():
                message = InboundMessage.objects.create(
                    mailbox_id=mailbox_id,
                    smtp_credential_id=smtp_credential_id,
                    scheduled_send=send,
                    enrollment_id=enrollment_id,
                    **vars(facts),
                )
        except IntegrityError:
            return None
        sent_outcomes_settle(enrollment_ids=[enrollment_id])  # the message replied to is recorded as sent first
        moved = None
        if kind == InboundMessage.Kind.REPLY:
            moved = enrollment_transition(
                enrollment_id=enrollment_id, to=Enrollment.Status.REPLIED, at=facts.received_at
            )
            if moved is not None:
                mailing_services.scheduled_sends_cancel_for_enrollment(enrollment_id=enrollment_id, reason="replied")
                logger.info(
                    "Reply detected from %s (enrollment %s): its sequence stops", facts.from_email, enrollment_id
                )
        elif kind == InboundMessage.Kind.BOUNCE:
            reason = f"{facts.dsn_status} {facts.dsn_diagnostic}".strip()
            moved = mailing_services.enrollment_bounce(enrollment_id=enrollment_id, reason=reason, at=facts.received_at)
            bounced = moved is not None
        if moved is not None:
            message.applied = True
            message.save(update_fields=["applied"])
    if bounced:
        _bounce_guard(_send_credential_id(send, enrollment_id))
    return message


# --- provider webhooks (SMTP2GO) ----------------------------------------------------------------------
#
# What applying each type of provider event does, one handler per type: each returns (outcome, bounced).
# A type with no handler changes nothing: it is stored already applied, with no task.


def _bounce(event: ProviderEvent, send: ScheduledSend, at: datetime.datetime) -> tuple[str, bool]:
    reason = event.reason or event.provider_event
    bounced = mailing_services.enrollment_bounce(enrollment_id=send.enrollment_id, reason=reason, at=at) is not None
    return ("bounced" if bounced else "no_change"), bounced


def _complain(event: ProviderEvent, send: ScheduledSend, at: datetime.datetime) -> tuple[str, bool]:
    """A spam report bounces the enrollment and unsubscribes the contact account-wide."""
    reason = f"spam complaint: {event.reason}" if event.reason else "spam complaint"
    bounced = mailing_services.enrollment_bounce(enrollment_id=send.enrollment_id, reason=reason, at=at) is not None
    _contact_unsubscribe_from_send(send=send, source="smtp2go:spam", at=at, settled=True)
    return f"{'bounced' if bounced else 'no_change'}+unsubscribed", bounced


def _unsubscribe(event: ProviderEvent, send: ScheduledSend, at: datetime.datetime) -> tuple[str, bool]:
    changed = _contact_unsubscribe_from_send(send=send, source="smtp2go:unsubscribe", at=at, settled=True)
    return ("unsubscribed" if changed else "no_change"), False


def _record(event: ProviderEvent, send: ScheduledSend, at: datetime.datetime) -> tuple[str, bool]:
    """Matched to its send and kept (a soft bounce: the provider retries), nothing changes."""
    return "recorded", False


PROVIDER_EVENT_EFFECTS: dict[str, Callable[[ProviderEvent, ScheduledSend, datetime.datetime], tuple[str, bool]]] = {
    ProviderEvent.Type.BOUNCED: _bounce,
    ProviderEvent.Type.REJECTED: _bounce,
    ProviderEvent.Type.COMPLAINED: _complain,
    ProviderEvent.Type.UNSUBSCRIBED: _unsubscribe,
    ProviderEvent.Type.DEFERRED: _record,
}


def provider_event_store(*, account_id: Any, fields: dict[str, Any]) -> tuple[ProviderEvent, bool]:
    """Store a normalized provider event once per idempotency key: (event, created).

    An event whose type changes nothing (delivered, opened, unknown, …) is
    stored already applied (outcome "stored"); the others are left for
    `provider_event_apply` (`awaits_applying`), which the caller hands to a
    task once this has committed.
    """
    if fields["event_type"] not in PROVIDER_EVENT_EFFECTS:
        fields = {**fields, "outcome": "stored", "processed_at": timezone.now()}
    try:
        with transaction.atomic():
            return ProviderEvent.objects.create(account_id=account_id, **fields), True
    except IntegrityError:
        return ProviderEvent.objects.get(account_id=account_id, idempotency_key=fields["idempotency_key"]), False


def _match_send(event: ProviderEvent) -> ScheduledSend | None:
    """Our send by Message-ID when the event carries it, else the latest send to the recipient (this account)."""
    sends = ScheduledSend.objects.filter(campaign__account_id=event.account_id)
    if event.message_id:
        send = sends.filter(message_id=event.message_id).first()
        if send is not None:
            return send
    if event.recipient:
        return (
            sends.filter(enrollment__contact__email=event.recipient.lower(), sent_at__isnull=False)
            .order_by("-sent_at")
            .first()
        )
    return None


def provider_event_apply(*, event_id: uuid.UUID) -> str:
    """Apply a stored provider event once; returns what it did ("already" when it had been applied).

    bounced (hard) and rejected → the enrollment bounces (reason from the
    provider's message); complained (spam) → bounces and the contact is
    unsubscribed account-wide; unsubscribed → unsubscribed account-wide;
    deferred (soft bounce) → recorded only (`PROVIDER_EVENT_EFFECTS`). An event
    that matches none of our sends is "unmatched"; one whose message the worker
    has not recorded yet is left for the sweeper ("in_flight"). A bounce then
    runs the bounce-rate guard of the credential that sent the message.
    """
    bounced = False
    with transaction.atomic():
        event = ProviderEvent.objects.select_for_update().filter(pk=event_id, processed_at__isnull=True).first()
        if event is None:
            return "already"
        send = _match_send(event)
        if send is not None and send.status == ScheduledSend.Status.SENDING:
            return "in_flight"  # the worker has not recorded the send yet: the sweeper applies it later
        effect = PROVIDER_EVENT_EFFECTS.get(event.event_type, _record)
        if send is None:
            outcome = "unmatched"
        else:
            # Recorded as sent before what followed, for every enrollment this may stop, and before
            # any enrollment is locked (the worker locks sends, then enrollments).
            contact_enrollments = Enrollment.objects.filter(contact__enrollments=send.enrollment_id)
            sent_outcomes_settle(enrollment_ids=contact_enrollments.values_list("id", flat=True))
            outcome, bounced = effect(event, send, event.occurred_at or timezone.now())
        event.scheduled_send = send
        event.enrollment_id = send.enrollment_id if send else None
        event.outcome = outcome
        event.processed_at = timezone.now()
        event.save(update_fields=["scheduled_send", "enrollment", "outcome", "processed_at"])
    if bounced:
        _bounce_guard(_send_credential_id(send, send.enrollment_id))
    return outcome
