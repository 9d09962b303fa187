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

Kinds: `bounced` (5xx for the recipient); `retried` (connect, auth, 4xx:
back to `scheduled` with exponential backoff until `MAILING_MAX_ATTEMPTS`,
then `failed`); `unknown` (DATA interrupted); `deferred` (a limit was
reached: next day, or next month for the plan limit, later steps shifted
alike); `requeued` (campaign paused or credential disabled: back to
`scheduled` as it was); `canceled` (the enrollment stopped); `lost` (the row
is no longer this worker's: nothing to do).
"""

from __future__ import annotations

import datetime
import random
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Account
from campaigns.models import Campaign, SmtpCredential
from core.sqlvalues import datetime_from_db, to_db, uuid_from_db
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
FIRST_STEP_UNKNOWN = "first_step_unknown"


@dataclass
class Outcome:
    kind: str
    row: ScheduledSend
    error: str = ""
    day: datetime.date | None = None
    reserved: bool = False  # the sending commit reserved the limits
    at: datetime.datetime | None = None
    connection_failed: bool = False
    limit: str = ""  # for `deferred`: which limit


def refusal(*, row: ScheduledSend, refused: str, day: datetime.date, worker: str) -> Outcome:
    """Why the `sending` commit did not happen, as an outcome to record."""
    if refused in (limits.DAILY_LIMIT, limits.PLAN_LIMIT):
        return Outcome(kind="deferred", row=row, day=day, limit=refused, error=f"{refused} reached")
    fresh = (
        ScheduledSend.objects.select_related("campaign", "smtp_credential", "enrollment__contact")
        .filter(pk=row.pk)
        .first()
    )
    if fresh is None or fresh.status != Status.QUEUED or fresh.claimed_by != worker:
        return Outcome(kind="lost", row=row)
    if fresh.campaign.status != Campaign.Status.ACTIVE:
        return Outcome(kind="requeued", row=row, error=f"campaign {fresh.campaign.status}")
    if fresh.smtp_credential is None or fresh.smtp_credential.disabled_at is not None:
        return Outcome(kind="requeued", row=row, error="credential disabled")
    enrollment = fresh.enrollment
    if enrollment.status == Enrollment.Status.PENDING and row.step.position > 1:
        first = ScheduledSend.objects.filter(enrollment_id=row.enrollment_id, step__position=1).first()
        if first is not None and first.status == Status.UNKNOWN:
            # Only an operator can settle step 1 (release or cancel it): look again in a few hours.
            return Outcome(
                kind="deferred",
                row=row,
                day=day,
                limit=FIRST_STEP_UNKNOWN,
                error="step 1's outcome is unknown: waiting for an operator to release or cancel it",
            )
        # A follow-up whose first message has not gone out yet (deferred or retrying): wait for it.
        return Outcome(kind="deferred", row=row, day=day, limit="first_step_pending", error="step 1 not sent yet")
    return Outcome(kind="canceled", row=row, error=f"enrollment stopped ({enrollment.status})")


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
# lock, then finds `outcome_pending` false.
_CLAIM_SENT_SQL = """
UPDATE mailing_scheduledsend SET outcome_pending = false, lease_until = NULL, updated_at = %(now)s
WHERE outcome_pending AND status = 'sent' AND {claimed}
RETURNING enrollment_id, sent_at, smtp_credential_id,
    (SELECT s.position FROM campaigns_sequencestep s WHERE s.id = mailing_scheduledsend.step_id),
    (SELECT max(s.position) FROM campaigns_sequencestep s WHERE s.campaign_id = mailing_scheduledsend.campaign_id),
    (SELECT c.account_id FROM campaigns_campaign c WHERE c.id = mailing_scheduledsend.campaign_id)
"""


def sent_outcomes_apply(*, credential: SmtpCredential, worker: str) -> int:
    """Apply the consequences of the messages `worker` sent through `credential` (`_apply_sent`)."""
    return _apply_sent(
        "smtp_credential_id = %(credential)s AND claimed_by = %(worker)s",
        {"credential": to_db(credential.pk), "worker": worker},
    )


def sent_outcomes_reap(*, now: datetime.datetime) -> int:
    """Apply the consequences that workers which died (their lease ran out before `now`) left pending."""
    return _apply_sent("lease_until < %(before)s", {"before": to_db(now)})


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
            cursor.execute(_CLAIM_SENT_SQL.format(claimed=claimed), {**params, "now": to_db(timezone.now())})
            rows = [
                (enrollment, datetime_from_db(at), uuid_from_db(credential), position, last, uuid_from_db(account))
                for enrollment, at, credential, position, last, account in cursor
            ]
        if not rows:
            return 0
        by_credential: dict[Any, dict[int, datetime.datetime]] = {}
        for enrollment, sent_at, credential, position, _, _ in rows:
            if position == 1:
                by_credential.setdefault(credential, {})[enrollment] = sent_at
        for credential, at_by_id in by_credential.items():
            enrollments_transition(to=Enrollment.Status.SENT, at_by_id=at_by_id, smtp_credential_id=credential, step=1)
        enrollments_complete(
            at_by_id={enrollment: sent_at for enrollment, sent_at, _, position, last, _ in rows if position == last}
        )
        zones = {
            account.pk: limits.account_zone(account)
            for account in Account.objects.filter(pk__in={row[5] for row in rows})
        }
        days = Counter(
            (credential, limits.local_day(zones[account], sent_at))
            for _, sent_at, credential, _, _, account in rows
            if credential is not None  # a credential deleted since: nothing left to count on
        )
        for (credential, day), count in days.items():
            limits.count_outcome(credential_id=credential, day=day, sent=count)
    return len(rows)


def _deferred_until(outcome: Outcome, zone, campaign: Campaign, spread: float) -> datetime.datetime:
    now = timezone.now()
    if outcome.limit == limits.PLAN_LIMIT:
        start = limits.day_start(zone, limits.next_month(limits.month_of(outcome.day)))
    elif outcome.limit == limits.DAILY_LIMIT:
        start = limits.day_start(zone, outcome.day + datetime.timedelta(days=1))
    elif outcome.limit == FIRST_STEP_UNKNOWN:
        return now + MAX_BACKOFF
    else:
        return now + datetime.timedelta(seconds=settings.MAILING_RETRY_BASE_SECONDS)
    return start + datetime.timedelta(seconds=spread)


def _apply(outcome: Outcome, credential: SmtpCredential, worker: str, zone, spreads: dict) -> str | None:
    """Write one outcome (any kind but `sent`: `sent_outcomes_apply`); returns "bounced" when it bumps that counter."""
    row, now = outcome.row, timezone.now()
    position = row.step.position
    if outcome.kind == "bounced":
        source = (Status.SENDING, Status.UNKNOWN) if outcome.reserved else (Status.QUEUED,)
        moved = _mine(row, worker, *source).update(
            status=Status.BOUNCED, last_error=outcome.error, lease_until=None, updated_at=now
        )
        if not moved:
            return None
        enrollment_bounce(
            enrollment_id=row.enrollment_id,
            reason=outcome.error,
            at=now,
            step=position,
            smtp_credential_id=credential.pk,
        )
        return "bounced"
    if outcome.kind == "retried":
        source = (Status.SENDING,) if outcome.reserved else (Status.QUEUED,)
        attempts = row.attempts + 1
        if attempts >= settings.MAILING_MAX_ATTEMPTS:
            moved = _mine(row, worker, *source).update(
                status=Status.FAILED, attempts=attempts, last_error=outcome.error, lease_until=None, updated_at=now
            )
            if moved:
                scheduled_sends_cancel_for_enrollment(
                    enrollment_id=row.enrollment_id, reason=f"step {position} failed: {outcome.error}"
                )
        else:
            delay = backoff(attempts)
            moved = _mine(row, worker, *source).update(
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
                credential_id=credential.pk,
                account_id=row.campaign.account_id,
                day=outcome.day,
                first_message=position == 1,
            )
        return None
    if outcome.kind == "unknown":
        _mine(row, worker, Status.SENDING).update(status=Status.UNKNOWN, last_error=outcome.error, updated_at=now)
        return None
    if outcome.kind == "deferred":
        spreads[outcome.limit] = spreads.get(outcome.limit, 0.0) + random.uniform(  # noqa: S311
            row.campaign.min_wait_seconds, row.campaign.max_wait_seconds
        )
        until = _deferred_until(outcome, zone, row.campaign, spreads[outcome.limit])
        moved = _mine(row, worker, Status.QUEUED).update(
            status=Status.SCHEDULED,
            send_at=until,
            claimed_by="",
            lease_until=None,
            last_error=outcome.error,
            updated_at=now,
        )
        if moved:
            _shift_later_steps(row, max(until - row.send_at, datetime.timedelta(0)))
        return None
    if outcome.kind == "requeued":
        _mine(row, worker, Status.QUEUED).update(
            status=Status.SCHEDULED, claimed_by="", lease_until=None, updated_at=now
        )
        return None
    if outcome.kind == "canceled":
        scheduled_sends_cancel_for_enrollment(enrollment_id=row.enrollment_id, reason=outcome.error)
    return None


def record(batch: list[Outcome], *, credential: SmtpCredential, worker: str) -> None:
    """Write `batch` in one transaction (module docstring), then run the bounce-rate guard if needed."""
    zone = limits.account_zone(credential.campaign.account)
    counters: dict[tuple[datetime.date, str], int] = {}
    spreads: dict[str, float] = {}
    requeued_disabled = False
    with transaction.atomic():
        for outcome in batch:
            counter = _apply(outcome, credential, worker, zone, spreads)
            if counter:
                key = (outcome.day, counter)
                counters[key] = counters.get(key, 0) + 1
            requeued_disabled |= outcome.kind == "requeued" and "credential" in outcome.error
        for (day, counter), n in counters.items():
            limits.count_outcome(credential_id=credential.pk, day=day, **{counter: n})
    if requeued_disabled:
        credential.refresh_from_db(fields=["disabled_at"])
        if credential.disabled_at is not None:
            scheduled_sends_reassign(from_credential=credential)
    if any(key[1] == "bounced" for key in counters):
        smtp_credential_check_bounce_rate(smtp_credential_id=credential.pk)
