"""The reads behind GET /api/sequences/v1/enrollments: the vendor's enrollment states over ours.

They live beside the API module rather than in `enrollments.selectors`: they
ask the send outbox (mailing) and the detected replies (inbound), which sit
above enrollments in the dependency order (DESIGN.md); API modules may read
any app.

The vendor's states, defined once here (`STATUS_CONDITIONS`), as SQL, so the
`status` filter and the shown `status` ask the same question:
- stopped: completed, replied, bounced or unsubscribed (the enrollment's own stamps);
- dispatched: the enrollment has rows in the send outbox;
- something left to send: an outbox row still `scheduled`, `queued`,
  `sending`, or `unknown` (an operator may release it);
- `DRAFT`: not stopped, not dispatched; `IN_PROGRESS`: not stopped, something
  left; `FINISHED`: stopped, or dispatched with nothing left (its sends were
  all made, failed or canceled).

Enrollments carry no account column, so "the account's enrollments in key
order" is a merge: one `… WHERE campaign_id = %s AND id > cursor ORDER BY id
LIMIT n` per campaign (each a range scan of the `(campaign, id)` index), UNION
ALL, ordered, cut to n. A page at depth 900,000 then reads what the first page
reads (at most n rows per campaign), whatever other accounts hold.

A page costs five queries whatever its size: the account's campaigns, the
page's keys (the merge), the enrollments (with their campaign, contact and
credential joined, the outbox facts as correlated subqueries), their detected
replies, and their mailboxes' last send attempts.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Least

from accounts.models import Account
from campaigns.selectors import campaign_list
from enrollments.models import Enrollment, EnrollmentSkip
from inbound.models import InboundMessage
from mailing.models import ScheduledSend

DRAFT, IN_PROGRESS, FINISHED = "DRAFT", "IN_PROGRESS", "FINISHED"
STATUSES = (DRAFT, IN_PROGRESS, FINISHED)

Send = ScheduledSend.Status
LEFT_TO_SEND = (Send.SCHEDULED, Send.QUEUED, Send.SENDING, Send.UNKNOWN)
# A send attempt that reached a server and got an answer (or a retry after one).
ATTEMPTED = Q(status__in=[Send.SENT, Send.BOUNCED, Send.FAILED, Send.UNKNOWN]) | Q(
    status__in=[Send.SCHEDULED, Send.QUEUED, Send.SENDING], attempts__gt=0
)
# How an authentication failure reaches an outbox row: smtplib's SMTPAuthenticationError (or the
# server's refusal before AUTH) becomes `SmtpUnavailable(reply_text(code, …))`, recorded by the
# `retried` outcome as the row's last_error, "535 5.7.8 …" (RFC 4954: 530, 534, 535, 538).
AUTH_FAILURE = re.compile(r"^53[0458][ -]")
# Skips that mean "left out of the sequence" (an already-enrolled skip is about another enroll).
EXCLUDING_SKIPS = (EnrollmentSkip.Kind.MX_INVALID, EnrollmentSkip.Kind.CROSS_CAMPAIGN_DUPLICATE)

_STOPPED = (
    Q(completed_at__isnull=False)
    | Q(replied_at__isnull=False)
    | Q(bounced_at__isnull=False)
    | Q(unsubscribed_at__isnull=False)
)
STATUS_CONDITIONS: dict[str, Q] = {
    DRAFT: ~_STOPPED & Q(dispatched=False),
    IN_PROGRESS: ~_STOPPED & Q(left_to_send=True),
    FINISHED: _STOPPED | (Q(dispatched=True) & Q(left_to_send=False)),
}


def _sends():
    return ScheduledSend.objects.filter(enrollment_id=OuterRef("pk"))


def sequence_enrollment_page(*, account: Account, after: int | None, limit: int, **filters: Any) -> list[Enrollment]:
    """Up to `limit` rows of `sequence_enrollment_list(**filters)` with a key above `after`, in key order."""
    if filters.get("person_id") is not None:
        # A person's few enrollments come off the contact's index: no merge needed.
        rows = sequence_enrollment_list(account=account, **filters)
        return list((rows.filter(pk__gt=after) if after is not None else rows)[:limit])
    campaigns = campaign_list(account=account)
    if filters.get("sequence_id") is not None:
        campaigns = campaigns.filter(pk=filters["sequence_id"])
    if filters.get("mailbox_id") is not None:  # the campaigns and journeys using the mailbox
        campaigns = campaigns.filter(smtp_credentials__mailbox_id=filters["mailbox_id"]).distinct()
    campaign_ids = list(campaigns.order_by("pk").values_list("pk", flat=True))
    if not campaign_ids:
        return []
    base = sequence_enrollment_list(account=account, **filters).select_related(None)
    if after is not None:
        base = base.filter(pk__gt=after)
    parts = [base.filter(campaign_id=pk).values_list("pk", flat=True)[:limit] for pk in campaign_ids]
    keys = parts[0] if len(parts) == 1 else parts[0].union(*parts[1:], all=True).order_by("id")[:limit]
    keys = list(keys)
    if not keys:
        return []
    return list(sequence_enrollment_list(account=account, **filters).filter(pk__in=keys))


def sequence_enrollment_list(
    *,
    account: Account,
    sequence_id: Any = None,
    person_id: Any = None,
    mailbox_id: Any = None,
    statuses: list[str] | None = None,
    updated_after: datetime.datetime | None = None,
    updated_before: datetime.datetime | None = None,
) -> QuerySet[Enrollment]:
    """The account's campaign enrollments (journeys excluded), filtered, ordered by `id`.

    Another account's sequence, person or mailbox id matches nothing. Each row
    carries `dispatched`, `left_to_send`, `excluded`, `canceled` (a send was
    canceled) and `last_send_change` (when its outbox last changed).
    """
    queryset = (
        Enrollment.objects.filter(campaign__in=campaign_list(account=account))
        .select_related("campaign", "contact", "smtp_credential__mailbox")
        .annotate(
            dispatched=Exists(_sends()),
            left_to_send=Exists(_sends().filter(status__in=LEFT_TO_SEND)),
            canceled=Exists(_sends().filter(status=Send.CANCELED)),
            last_send_change=Subquery(
                _sends().order_by().values("enrollment_id").annotate(at=Max("updated_at")).values("at")[:1]
            ),
            excluded=Exists(
                EnrollmentSkip.objects.filter(
                    campaign_id=OuterRef("campaign_id"), contact_id=OuterRef("contact_id"), kind__in=EXCLUDING_SKIPS
                )
            ),
            stopped_at=Least("completed_at", "replied_at", "bounced_at", "unsubscribed_at"),
        )
    )
    if sequence_id is not None:
        queryset = queryset.filter(campaign_id=sequence_id)
    if person_id is not None:
        queryset = queryset.filter(contact_id=person_id)
    if mailbox_id is not None:
        queryset = queryset.filter(smtp_credential__mailbox_id=mailbox_id)
    if updated_after is not None:
        queryset = queryset.filter(updated_at__gte=updated_after)
    if updated_before is not None:
        queryset = queryset.filter(updated_at__lte=updated_before)
    if statuses and set(statuses) != set(STATUSES):
        condition = Q()
        for status in set(statuses):
            condition |= STATUS_CONDITIONS[status]
        queryset = queryset.filter(condition)
    return queryset.order_by("id")


@dataclass(frozen=True)
class Reply:
    id: Any
    subject: str
    received_at: datetime.datetime


def sequence_enrollment_status(enrollment: Enrollment) -> str:
    """The vendor's status of a row of `sequence_enrollment_list` (the same rule as the filter)."""
    if enrollment.stopped_at is not None or (enrollment.dispatched and not enrollment.left_to_send):
        return FINISHED
    return IN_PROGRESS if enrollment.left_to_send else DRAFT


def sequence_enrollment_ended_at(enrollment: Enrollment) -> datetime.datetime | None:
    """When a finished enrollment stopped: its first stop stamp, else its outbox's last change."""
    if sequence_enrollment_status(enrollment) != FINISHED:
        return None
    return enrollment.stopped_at or enrollment.last_send_change or enrollment.updated_at


def sequence_enrollment_is_canceled(enrollment: Enrollment) -> bool:
    """Stopped by something other than a reply, a bounce or an opt-out (an operator, a deletion, a failure)."""
    return bool(
        enrollment.canceled
        and enrollment.replied_at is None
        and enrollment.bounced_at is None
        and enrollment.unsubscribed_at is None
    )


def sequence_enrollment_replies(*, enrollment_ids: list[int]) -> dict[int, Reply]:
    """The detected reply of each enrollment (its first reply), in one query."""
    if not enrollment_ids:
        return {}
    rows = (
        InboundMessage.objects.filter(enrollment_id__in=enrollment_ids, kind=InboundMessage.Kind.REPLY)
        .order_by("enrollment_id", "received_at", "id")
        .distinct("enrollment_id")
        .values_list("enrollment_id", "id", "subject", "received_at")
    )
    return {enrollment_id: Reply(pk, subject, at) for enrollment_id, pk, subject, at in rows}


def mailboxes_unauthorized(*, mailbox_ids: set[Any]) -> set[Any]:
    """The mailboxes whose last send attempt (any campaign's) failed authentication, in one query."""
    if not mailbox_ids:
        return set()
    rows = (
        ScheduledSend.objects.filter(ATTEMPTED, smtp_credential__mailbox_id__in=mailbox_ids)
        .order_by("smtp_credential__mailbox_id", "-updated_at", "-id")
        .distinct("smtp_credential__mailbox_id")
        .values_list("smtp_credential__mailbox_id", "last_error")
    )
    return {pk for pk, error in rows if AUTH_FAILURE.match(error or "")}
