"""Recording what happened to each send, with the enrollment's transition and event.

Messages the server took (`sent`) take the fast way (`mailing.sending`): the
row is marked `sent` with `outcome_pending` in the very statement that
commits the next row's `sending`, and `sent_outcomes_apply` applies their
consequences a batch at a time, set-based, in one transaction: the
enrollments' `pending → sent` transitions and `enrollment.completed` after
the last step, with their webhook events, and the day's `sent` counters.
A batch left by a dead worker is applied by the lease reaper
(`sent_outcomes_reap`); whatever comes back about a message applies its
pending consequences first (`sent_outcomes_settle`).

Every other outcome is written by `record`, in one transaction: the row's new
status (guarded by its current status and this worker's claim, so a reaper
that got there first is respected), the per-day counters, the state-machine
transition with its webhook event, and canceling the rest of a stopped
sequence. After the commit, the bounce-rate guard runs when anything bounced.

The kinds (`Kind`), each written by its own handler (`_HANDLERS`): `bounced`
(5xx for the recipient); `retried` (connect, auth, 4xx: back to `scheduled`
with exponential backoff until `MAILING_MAX_ATTEMPTS`, then `failed`);
`unknown` (DATA interrupted); `deferred` (a limit was reached: next day, or
next month for the plan limit, later steps shifted alike; or step 1 has not
gone out yet); `requeued` (campaign paused or credential disabled: back to
`scheduled` as it was); `canceled` (the enrollment stopped); `lost` (the row
is no longer this worker's: nothing to do). Why a row was refused is
`mailing.eligibility`'s answer.
"""

from __future__ import annotations

import datetime
import enum
import random
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Account
from campaigns.models import SmtpCredential
from enrollments.models import Enrollment
from enrollments.services import enrollments_complete, enrollments_transition

from . import limits
from .models import ScheduledSend
from .services import (
    enrollment_bounce,
    scheduled_sends_cancel_for_enrollment,
    scheduled_sends_reassign,
    smtp_credential_check_bounce_rate,
)

Status = ScheduledSend.Status
MAX_BACKOFF = datetime.timedelta(hours=6)
# Reasons (`Outcome.reason`) the recording acts on: a follow-up waits longer for an operator's
# decision on step 1; a credential found disabled has its sends moved to the others.
FIRST_STEP_UNKNOWN = "first_step_unknown"
CREDENTIAL_DISABLED = "credential_disabled"


class Kind(enum.StrEnum):
    """What became of a claimed row (module docstring)."""

    SENT = "sent"
    BOUNCED = "bounced"
    RETRIED = "retried"
    UNKNOWN = "unknown"
    DEFERRED = "deferred"
    REQUEUED = "requeued"
    CANCELED = "canceled"
    LOST = "lost"


@dataclass
class Outcome:
    kind: Kind
    row: ScheduledSend
    error: str = ""
    day: datetime.date | None = None
    reserved: bool = False  # the sending commit reserved the limits
    at: datetime.datetime | None = None
    connection_failed: bool = False
    reason: str = ""  # why it was deferred or requeued: a limit, or the eligibility condition it failed


def backoff(attempts: int) -> datetime.timedelta:
    """Exponential, from `MAILING_RETRY_BASE_SECONDS`, with ±20% jitter, at most 6 hours."""
    seconds = settings.MAILING_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    seconds *= random.uniform(0.8, 1.2)  # noqa: S311 (spreading retries, not secrecy)
    return min(datetime.timedelta(seconds=seconds), MAX_BACKOFF)


def _mine(row: ScheduledSend, worker: str, *statuses: str):
    return ScheduledSend.objects.filter(pk=row.pk, claimed_by=worker, status__in=statuses)


def _shift_later_steps(row: ScheduledSend, delta: datetime.timedelta) -> None:
    ScheduledSend.objects.filter(
        enrollment_id=row.enrollment_id, status=Status.SCHEDULED, step__position__gt=row.step.position
    ).update(send_at=F("send_at") + delta, updated_at=timezone.now())


# Claims sent rows whose consequences are pending and returns what applying them needs. A row is
# claimed once: a concurrent claimer (the worker, the reaper, an inbound event) waits for the row
# lock, then finds `outcome_pending` false. The last step is the enrollment's own (the highest of the
# steps it was scheduled), not the campaign's today: a step added to a running journey or campaign
# is not one its earlier enrollments wait for.
_CLAIM_SENT_SQL = """
UPDATE mailing_scheduledsend SET outcome_pending = false, lease_until = NULL, updated_at = %(now)s
WHERE outcome_pending AND status = 'sent' AND {claimed}
RETURNING enrollment_id, sent_at, smtp_credential_id,
    (SELECT s.position FROM campaigns_sequencestep s WHERE s.id = mailing_scheduledsend.step_id),
    (SELECT max(s.position) FROM mailing_scheduledsend own JOIN campaigns_sequencestep s ON s.id = own.step_id
     WHERE own.enrollment_id = mailing_scheduledsend.enrollment_id),
    (SELECT c.account_id FROM campaigns_campaign c WHERE c.id = mailing_scheduledsend.campaign_id),
    (SELECT k.mailbox_id FROM campaigns_smtpcredential k WHERE k.id = mailing_scheduledsend.smtp_credential_id)
"""


def sent_outcomes_apply(*, credential: SmtpCredential, worker: str) -> int:
    """Apply the consequences of the messages `worker` sent through `credential` (`_apply_sent`)."""
    return _apply_sent(
        "smtp_credential_id = %(credential)s AND claimed_by = %(worker)s",
        {"credential": credential.pk, "worker": worker},
    )


def sent_outcomes_reap(*, now: datetime.datetime) -> int:
    """Apply the consequences that workers which died (their lease ran out before `now`) left pending."""
    return _apply_sent("lease_until < %(before)s", {"before": now})


def sent_outcomes_settle(*, enrollment_ids: Collection[int]) -> int:
    """Apply at once the pending consequences of these enrollments' sent messages.

    For whatever comes back about a message (an open, a click, a reply, a
    bounce, an unsubscribe): its enrollment must be `sent` before that is recorded.
    """
    ids = {f"e{n}": int(pk) for n, pk in enumerate(enrollment_ids)}
    if not ids:
        return 0
    return _apply_sent(f"enrollment_id IN ({', '.join(f'%({name})s' for name in ids)})", ids)


def _apply_sent(claimed: str, params: dict[str, Any]) -> int:
    """Claim the sent rows matching `claimed` whose consequences are pending, and apply them.

    One transaction whatever their number: step-1 enrollments go
    `pending → sent` with the credential, enrollments whose last step this
    was are completed, each with its events, and each credential's `sent`
    counter of the day (in the account's time zone) grows. Returns how many rows.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SENT_SQL.format(claimed=claimed), {**params, "now": timezone.now()})
            rows = cursor.fetchall()
        if not rows:
            return 0
        by_credential: dict[Any, dict[int, datetime.datetime]] = {}
        for enrollment, sent_at, credential, position, _, _, _ in rows:
            if position == 1:
                by_credential.setdefault(credential, {})[enrollment] = sent_at
        for credential, at_by_id in by_credential.items():
            enrollments_transition(to=Enrollment.Status.SENT, at_by_id=at_by_id, smtp_credential_id=credential, step=1)
        enrollments_complete(
            at_by_id={enrollment: sent_at for enrollment, sent_at, _, position, last, _, _ in rows if position == last}
        )
        zones = {
            account.pk: limits.account_zone(account)
            for account in Account.objects.filter(pk__in={row[5] for row in rows})
        }
        days = Counter(
            (str(mailbox), str(credential), limits.local_day(zones[account], sent_at))
            for _, sent_at, credential, _, _, account, mailbox in rows
            if credential is not None  # a credential deleted since: nothing left to count on
        )
        # In one order (mailbox, credential, day) whoever counts, so that two transactions counting
        # for credentials that share mailboxes lock the day rows in the same order (no deadlock).
        for (mailbox, credential, day), count in sorted(days.items()):
            limits.count_outcome(credential_id=credential, day=day, sent=count, mailbox_id=mailbox)
    return len(rows)


def _deferred_until(outcome: Outcome, zone, spread: float) -> datetime.datetime:
    now = timezone.now()
    if outcome.reason == limits.PLAN_LIMIT:
        start = limits.day_start(zone, limits.next_month(limits.month_of(outcome.day)))
    elif outcome.reason == limits.DAILY_LIMIT:
        start = limits.day_start(zone, outcome.day + datetime.timedelta(days=1))
    elif outcome.reason == FIRST_STEP_UNKNOWN:
        return now + MAX_BACKOFF
    else:
        return now + datetime.timedelta(seconds=settings.MAILING_RETRY_BASE_SECONDS)
    return start + datetime.timedelta(seconds=spread)


@dataclass
class _Batch:
    """What the handlers of one `record` batch share, and what they leave for after it."""

    credential: SmtpCredential
    worker: str
    zone: Any
    spreads: dict[str, float] = field(default_factory=dict)  # the jitter of the deferred rows so far, per reason
    bounced: Counter[datetime.date] = field(default_factory=Counter)  # bounces to count, per day
    credential_disabled: bool = False  # a row was put back because the credential's mailbox is disabled


def _bounced(outcome: Outcome, batch: _Batch) -> None:
    row, now = outcome.row, timezone.now()
    source = (Status.SENDING, Status.UNKNOWN) if outcome.reserved else (Status.QUEUED,)
    moved = _mine(row, batch.worker, *source).update(
        status=Status.BOUNCED, last_error=outcome.error, lease_until=None, updated_at=now
    )
    if not moved:
        return
    enrollment_bounce(
        enrollment_id=row.enrollment_id,
        reason=outcome.error,
        at=now,
        step=row.step.position,
        smtp_credential_id=batch.credential.pk,
    )
    batch.bounced[outcome.day] += 1


def _retried(outcome: Outcome, batch: _Batch) -> None:
    row, now = outcome.row, timezone.now()
    position = row.step.position
    source = (Status.SENDING,) if outcome.reserved else (Status.QUEUED,)
    attempts = row.attempts + 1
    if attempts >= settings.MAILING_MAX_ATTEMPTS:
        moved = _mine(row, batch.worker, *source).update(
            status=Status.FAILED, attempts=attempts, last_error=outcome.error, lease_until=None, updated_at=now
        )
        if moved:
            scheduled_sends_cancel_for_enrollment(
                enrollment_id=row.enrollment_id, reason=f"step {position} failed: {outcome.error}"
            )
    else:
        delay = backoff(attempts)
        moved = _mine(row, batch.worker, *source).update(
            status=Status.SCHEDULED,
            attempts=attempts,
            last_error=outcome.error,
            send_at=now + delay,
            claimed_by="",
            lease_until=None,
            updated_at=now,
        )
        if moved:
            _shift_later_steps(row, max(now + delay - row.send_at, datetime.timedelta(0)))
    if moved and outcome.reserved:
        limits.limits_release(
            credential_id=batch.credential.pk,
            account_id=row.campaign.account_id,
            day=outcome.day,
            first_message=position == 1,
        )


def _unknown(outcome: Outcome, batch: _Batch) -> None:
    _mine(outcome.row, batch.worker, Status.SENDING).update(
        status=Status.UNKNOWN, last_error=outcome.error, updated_at=timezone.now()
    )


def _deferred(outcome: Outcome, batch: _Batch) -> None:
    row, now = outcome.row, timezone.now()
    batch.spreads[outcome.reason] = batch.spreads.get(outcome.reason, 0.0) + random.uniform(  # noqa: S311
        row.campaign.min_wait_seconds, row.campaign.max_wait_seconds
    )
    until = _deferred_until(outcome, batch.zone, batch.spreads[outcome.reason])
    moved = _mine(row, batch.worker, Status.QUEUED).update(
        status=Status.SCHEDULED,
        send_at=until,
        claimed_by="",
        lease_until=None,
        last_error=outcome.error,
        updated_at=now,
    )
    if moved:
        _shift_later_steps(row, max(until - row.send_at, datetime.timedelta(0)))


def _requeued(outcome: Outcome, batch: _Batch) -> None:
    _mine(outcome.row, batch.worker, Status.QUEUED).update(
        status=Status.SCHEDULED, claimed_by="", lease_until=None, updated_at=timezone.now()
    )
    batch.credential_disabled |= outcome.reason == CREDENTIAL_DISABLED


def _canceled(outcome: Outcome, batch: _Batch) -> None:
    scheduled_sends_cancel_for_enrollment(enrollment_id=outcome.row.enrollment_id, reason=outcome.error)


def _lost(outcome: Outcome, batch: _Batch) -> None:
    """The row is no longer this worker's (a reaper or an operator got there first): nothing to write."""


# One handler per kind; `sent` has none here: `sent_outcomes_apply` applies those set-based.
_HANDLERS: dict[Kind, Callable[[Outcome, _Batch], None]] = {
    Kind.BOUNCED: _bounced,
    Kind.RETRIED: _retried,
    Kind.UNKNOWN: _unknown,
    Kind.DEFERRED: _deferred,
    Kind.REQUEUED: _requeued,
    Kind.CANCELED: _canceled,
    Kind.LOST: _lost,
}


def record(batch: list[Outcome], *, credential: SmtpCredential, worker: str) -> None:
    """Write `batch` (any kind but `sent`) in one transaction, then run the bounce-rate guard if needed."""
    shared = _Batch(credential=credential, worker=worker, zone=limits.account_zone(credential.campaign.account))
    with transaction.atomic():
        for outcome in batch:
            _HANDLERS[outcome.kind](outcome, shared)
        for day, bounced in sorted(shared.bounced.items()):  # days in one order, as `_apply_sent` does
            limits.count_outcome(
                credential_id=credential.pk, day=day, bounced=bounced, mailbox_id=credential.mailbox_id
            )
    if shared.credential_disabled:
        credential.mailbox.refresh_from_db(fields=["disabled_at"])
        if credential.mailbox.disabled_at is not None:
            scheduled_sends_reassign(from_credential=credential)
    if shared.bounced:
        smtp_credential_check_bounce_rate(smtp_credential_id=credential.pk)
