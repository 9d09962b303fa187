"""Dispatch: turn a batch's pending enrollments into scheduled sends, set-based.

`campaign_dispatch` writes one `ScheduledSend` per (enrollment, step):

- Slots. Each enabled mailbox may take `daily_limit` step-1 sends per day
  (in the account's time zone), less the step-1 sends already scheduled or
  sent through it that day by every campaign and journey using it; a
  credential's `campaign_daily_limit` caps this campaign's share. Step 2+ do
  not count against a day (the seed), here nor when they are sent
  (`mailing.limits` reserves the daily limit for first messages only). The
  mailboxes' rows are locked while the plan is made and written, so two
  campaigns dispatching through one mailbox plan one after the other and
  their forecasts add up to at most its limit per day. Slots are dealt day
  by day, round-robin over the credentials in their order,
  so today fills first and the rest rolls to the following days; the i-th
  enrollment of the batch (by `created_at, id`: priority enrollments first)
  takes the i-th slot.
- Times. Each day's first slot is at its anchor, each next one a random
  gap later, uniform in `[min_wait_seconds, max_wait_seconds]`. Today's
  anchor is now (or just after the campaign's last step-1 send already
  scheduled today); a later day's anchor is its local midnight. A slot that
  would fall past midnight goes to the next day, so no day's first messages
  exceed what it was planned for. Step N is at step 1 + the cumulative
  `delay_minutes` of steps 2..N.

The plan (which credential and time each slot gets) is made in Python from
one GROUP BY of what the mailboxes hold; the rows are written by one
`INSERT … SELECT` that ranks the batch's enrollments and joins them to the
slots passed in as arrays, and sums what it wrote per day.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import BooleanField, Count, DateTimeField, Max, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate
from django.utils import timezone

from campaigns.models import Campaign, SequenceStep, SmtpCredential
from campaigns.services import campaign_require_complete, campaign_status_change
from contacts.mx import MxStatus, check_domains, domain_of
from core.errors import ApplicationError
from enrollments.models import Enrollment
from enrollments.services import enrollment_transition
from mailboxes.models import Mailbox

from . import limits
from .models import ScheduledSend

Status = ScheduledSend.Status
# Step-1 rows that hold (or held) a slot of their day.
SLOT_HOLDING = (Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.SENT, Status.UNKNOWN, Status.BOUNCED)
# A plan that finds no free slot in this many days has nothing to wait for (every mailbox's cap is used up).
MAX_PLAN_DAYS = 366


@dataclass
class DispatchResult:
    batch_number: int
    scheduled: int
    sends: int
    first_send_at: datetime.datetime | None
    last_send_at: datetime.datetime | None
    by_day: list[dict[str, Any]] = field(default_factory=list)
    mx_bounced: int = 0


def _refuse(code: str, message: str, status_code: int = 422) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status_code)


# An enrollment without a send yet. OFFSET 0 keeps this a lookup of each enrollment in the
# (enrollment, step) index: as an anti-join it is planned from statistics, and stale ones (the table
# analyzed empty, then filled before autovacuum looks again) made it compare every enrollment with
# every send (100k x 300k ran for over ten minutes, with the campaign row locked).
_NO_SEND_YET = "NOT EXISTS (SELECT 1 FROM mailing_scheduledsend s WHERE s.enrollment_id = {enrollment}.id OFFSET 0)"


def undispatched(campaign: Campaign):
    """Pending enrollments of the campaign that have no send yet (the dispatch candidates).

    The condition names the enrollments table itself: use this queryset as the outer query, not as a
    subquery (where Django would give the table an alias).
    """
    no_send_yet = _NO_SEND_YET.format(enrollment=Enrollment._meta.db_table)
    return Enrollment.objects.filter(
        RawSQL(no_send_yet, [], output_field=BooleanField()),  # noqa: S611 (constant SQL, no input)
        campaign=campaign,
        status=Enrollment.Status.PENDING,
        unsubscribed_at__isnull=True,
    )


def _pick_batch(campaign: Campaign, batch_number: int | None) -> int:
    candidates = undispatched(campaign)
    if batch_number is None:
        lowest = candidates.order_by("batch_number").values_list("batch_number", flat=True).first()
        if lowest is None:
            raise _refuse("no_pending_enrollments", "No enrollment of this campaign is waiting to be dispatched.")
        return lowest
    if not candidates.filter(batch_number=batch_number).exists():
        raise _refuse("no_pending_enrollments", f"Batch {batch_number} has no pending enrollment to dispatch.")
    return batch_number


def _bounce_mx_invalid(campaign: Campaign, batch_number: int) -> int:
    """Check the batch's domains (cached verdicts are reused); bounce provable no-MX ones. Returns how many."""
    rows = list(undispatched(campaign).filter(batch_number=batch_number).values_list("id", "contact__email").order_by())
    verdicts = check_domains(domain_of(email) for _, email in rows)
    bounced = 0
    for enrollment_id, email in rows:
        verdict = verdicts.get(domain_of(email))
        if verdict is not None and verdict.status == MxStatus.INVALID:
            reason = f"mx_invalid: {verdict.reason}" if verdict.reason else "mx_invalid"
            if enrollment_transition(enrollment_id=enrollment_id, to=Enrollment.Status.BOUNCED, bounce_reason=reason):
                bounced += 1
    return bounced


def _slots_held(step1: SequenceStep, credentials: list[SmtpCredential], since: datetime.datetime, zone):
    """Step-1 slots held from `since` on, per (day, mailbox) over every campaign using the mailboxes,
    per (day, credential) for this campaign's caps, and this campaign's last scheduled step 1 per day."""
    # The credentials, campaigns and first steps using these mailboxes, looked up first: as literal lists
    # they let each count be a range scan of the campaigns' (status, send_at) index, not of every send.
    using = list(
        SmtpCredential.objects.filter(mailbox_id__in={c.mailbox_id for c in credentials}).values_list(
            "pk", "mailbox_id", "campaign_id"
        )
    )
    mailbox_of = {credential: mailbox for credential, mailbox, _ in using}
    first_steps = list(
        SequenceStep.objects.filter(position=1, campaign_id__in={c for _, _, c in using}).values_list("pk", flat=True)
    )
    through = ScheduledSend.objects.filter(
        campaign_id__in={c for _, _, c in using}, smtp_credential_id__in=list(mailbox_of), step_id__in=first_steps
    )
    held = [
        *through.filter(status__in=SLOT_HOLDING, send_at__gte=since)
        .annotate(day=TruncDate("send_at", tzinfo=zone))
        .values("smtp_credential_id", "campaign_id", "day")
        .annotate(n=Count("*"), last=Max("send_at", filter=~Q(status=Status.SENT)))
        .order_by(),
        # Overdue first messages still to go (a re-enabled mailbox's, a paused campaign's) go out today:
        # they hold today's room, as the forecasts count them.
        *through.filter(status__in=(Status.SCHEDULED, Status.QUEUED), send_at__lt=since)
        .annotate(day=Value(since.date()))
        .values("smtp_credential_id", "campaign_id", "day")
        .annotate(n=Count("*"), last=Value(None, output_field=DateTimeField()))
        .order_by(),
    ]
    by_mailbox: dict[tuple[datetime.date, Any], int] = {}
    by_credential: dict[tuple[datetime.date, Any], int] = {}
    last_scheduled: dict[datetime.date, datetime.datetime] = {}
    for row in held:
        day = row["day"]
        key = (day, mailbox_of[row["smtp_credential_id"]])
        by_mailbox[key] = by_mailbox.get(key, 0) + row["n"]
        by_credential[(day, row["smtp_credential_id"])] = (
            by_credential.get((day, row["smtp_credential_id"]), 0) + row["n"]
        )
        mine = row["campaign_id"] == step1.campaign_id and row["last"]
        if mine and (day not in last_scheduled or row["last"] > last_scheduled[day]):
            last_scheduled[day] = row["last"]
    return by_mailbox, by_credential, last_scheduled


def _slot_plan(
    campaign: Campaign, credentials: list[SmtpCredential], step1: SequenceStep, needed: int, now, *, roll_over: bool
) -> tuple[list[int], list[float]]:
    """The first `needed` slots, in order: (index into `credentials`, step-1 time as epoch seconds) each.

    Day by day from today (the account's time zone): a credential may take its mailbox's limit less what
    every campaign holds through the mailbox that day, and at most its own cap less what this campaign
    holds. The day's slots go round-robin over the credentials, the first at the day's anchor, each next
    one a random wait later; a slot that would fall past midnight starts the next day instead, so every
    day's first messages stay within the limits it was planned under. Raises `no_capacity` when nothing
    fits today, unless `roll_over`.
    """
    zone = limits.account_zone(campaign.account)
    today = limits.local_day(zone, now)
    by_mailbox, by_credential, last_scheduled = _slots_held(step1, credentials, limits.day_start(zone, today), zone)
    jitter = random.Random()  # noqa: S311 (spacing sends, not a secret)
    lowest, highest = float(campaign.min_wait_seconds), float(campaign.max_wait_seconds)
    slot_credentials: list[int] = []
    slot_times: list[float] = []
    for index in range(MAX_PLAN_DAYS + 1):
        if len(slot_times) >= needed:
            return slot_credentials, slot_times
        day = today + datetime.timedelta(days=index)
        anchor = now if index == 0 else limits.day_start(zone, day)
        if day in last_scheduled:
            anchor = max(anchor, last_scheduled[day] + datetime.timedelta(seconds=campaign.min_wait_seconds))
        free = _free_slots(credentials, day, by_mailbox, by_credential)
        at, end, taken = anchor.timestamp(), limits.day_start(zone, day + datetime.timedelta(days=1)).timestamp(), 0
        while len(slot_times) < needed and any(free) and at < end:
            for position, left in enumerate(free):
                if not left or len(slot_times) >= needed:
                    continue
                if taken:
                    at += jitter.uniform(lowest, highest)
                if at >= end:
                    break
                slot_credentials.append(position)
                slot_times.append(at)
                free[position] -= 1
                taken += 1
        if index == 0 and not taken and not roll_over:
            raise _refuse(
                "no_capacity",
                "Every enabled mailbox of the campaign is at its daily limit of first messages for today.",
            )
    raise _refuse("no_capacity", "The campaign's mailboxes have no free slot in the coming year.")


def _free_slots(credentials: list[SmtpCredential], day, by_mailbox: dict, by_credential: dict) -> list[int]:
    """Each credential's free first-message slots on `day`; credentials sharing a mailbox share its room."""
    mailbox_free = {c.mailbox_id: c.mailbox.daily_limit - by_mailbox.get((day, c.mailbox_id), 0) for c in credentials}
    free = []
    for credential in credentials:
        room = mailbox_free[credential.mailbox_id]
        if credential.campaign_daily_limit is not None:
            room = min(room, credential.campaign_daily_limit - by_credential.get((day, credential.pk), 0))
        free.append(max(room, 0))
        mailbox_free[credential.mailbox_id] -= free[-1]
    return free


_INSERT_SQL = """
WITH slots AS (
    SELECT * FROM unnest(%(slot_credential)s::int[], %(slot_at)s::float8[]) WITH ORDINALITY AS s(credential, at, slot)
), targets AS (
    SELECT e.id AS enrollment_id, row_number() OVER (ORDER BY e.created_at, e.id) AS slot
    FROM enrollments_enrollment e
    WHERE e.campaign_id = %(campaign_id)s AND e.batch_number = %(batch)s AND e.status = 'pending'
      AND e.unsubscribed_at IS NULL
      AND {no_send_yet}
), timed AS (
    SELECT t.enrollment_id, (%(credential_ids)s::uuid[])[s.credential + 1] AS cred_id, to_timestamp(s.at) AS step1_at
    FROM targets t JOIN slots s ON s.slot = t.slot
), written AS (
    INSERT INTO mailing_scheduledsend
        (id, campaign_id, enrollment_id, step_id, smtp_credential_id, status, send_at, attempts,
         message_id, sent_at, last_error, claimed_by, lease_until, created_at, updated_at)
    SELECT gen_random_uuid(), %(campaign_id)s, t.enrollment_id, st.step_id, t.cred_id, 'scheduled',
           t.step1_at + make_interval(mins => st.cum_minutes), 0,
           NULL, NULL, '', '', NULL, %(now)s, %(now)s
    FROM timed t CROSS JOIN unnest(%(step_ids)s::uuid[], %(step_minutes)s::int[]) AS st(step_id, cum_minutes)
    RETURNING step_id, send_at
)
SELECT (send_at AT TIME ZONE %(zone)s)::date AS day, count(*) FILTER (WHERE step_id = (%(step_ids)s::uuid[])[1]),
       count(*), min(send_at), max(send_at)
FROM written GROUP BY 1 ORDER BY 1
""".replace("{no_send_yet}", _NO_SEND_YET.format(enrollment="e"))


def _write_sql(params: dict[str, Any]) -> list[tuple]:
    """Write the rows; per day of their first messages (the account's time zone): (day, firsts, rows, first
    send, last send), summed by the same statement (read back later, a fresh batch's rows are planned from
    statistics that have not seen them yet)."""
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, params)
        return cursor.fetchall()


def campaign_dispatch(
    *,
    campaign: Campaign,
    batch_number: int | None = None,
    now: datetime.datetime | None = None,
    roll_over: bool = False,
) -> DispatchResult:
    """Schedule every step for the batch's pending enrollments (module docstring for the plan).

    Raises (nothing written): 422 `campaign_incomplete` (no credential, no
    step, or a credential not ready: `campaign_require_complete`), 422
    `campaign_not_active` (paused), 402 `plan_limit_reached`
    (the account reserved its `monthly_limit` this month), 422
    `no_pending_enrollments`, 422 `no_capacity` (every credential disabled
    or at its limit of first messages today). With `verify_email_mx`,
    enrollments whose domain provably takes no mail are bounced
    (`mx_invalid`, through the state machine) and get no send. The campaign
    goes pending → active on its first dispatch (completed → active too).
    With `roll_over` (journeys, whose people enter one by one), a full day
    is no refusal: the batch starts on the next day with free slots.
    """
    now = now or timezone.now()
    steps = list(SequenceStep.objects.filter(campaign=campaign).order_by("position"))
    campaign_require_complete(
        steps=steps, credentials=list(SmtpCredential.objects.filter(campaign=campaign).select_related("mailbox"))
    )
    if campaign.status == Campaign.Status.PAUSED:
        raise _refuse("campaign_not_active", "The campaign is paused; resume it before dispatching.")
    if limits.plan_limit_reached(account=campaign.account, at=now):
        raise _refuse("plan_limit_reached", "The account has reached its monthly sending limit.", 402)
    batch_number = _pick_batch(campaign, batch_number)
    mx_bounced = _bounce_mx_invalid(campaign, batch_number) if campaign.verify_email_mx else 0

    with transaction.atomic():
        locked = Campaign.objects.select_for_update(of=("self",)).select_related("account").get(pk=campaign.pk)
        if locked.status == Campaign.Status.PAUSED:
            raise _refuse("campaign_not_active", "The campaign is paused; resume it before dispatching.")
        needed = undispatched(locked).filter(batch_number=batch_number).count()
        if not needed:
            raise _refuse("no_pending_enrollments", f"Batch {batch_number} has no pending enrollment to dispatch.")
        credentials = list(
            SmtpCredential.objects.filter(campaign=locked, mailbox__disabled_at__isnull=True)
            .select_related("mailbox")
            .order_by("created_at", "id")
        )
        if not credentials:
            raise _refuse("no_capacity", "Every mailbox of the campaign is disabled.")
        # Campaigns sharing a mailbox plan one after the other (module docstring); in id order, no deadlock.
        list(
            Mailbox.objects.select_for_update()
            .filter(pk__in=sorted({c.mailbox_id for c in credentials}))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        slot_credentials, slot_times = _slot_plan(locked, credentials, steps[0], needed, now, roll_over=roll_over)
        cumulative, total = [], 0
        for index, step in enumerate(steps):
            total += step.delay_minutes if index else 0
            cumulative.append(total)
        per_day = _write_sql(
            {
                "slot_credential": slot_credentials,
                "slot_at": slot_times,
                "credential_ids": [c.pk for c in credentials],
                "campaign_id": locked.pk,
                "batch": batch_number,
                "step_ids": [s.pk for s in steps],
                "step_minutes": cumulative,
                "now": now,
                "zone": getattr(limits.account_zone(locked.account), "key", "UTC"),
            }
        )
        campaign_status_change(campaign_id=locked.pk, to=Campaign.Status.ACTIVE)
        result = _summary(batch_number, steps, per_day, mx_bounced)
    campaign.refresh_from_db(fields=["status", "activated_at", "completed_at"])
    return result


def _summary(batch_number, steps, per_day, mx_bounced) -> DispatchResult:
    written = sum(row[2] for row in per_day)
    return DispatchResult(
        batch_number=batch_number,
        scheduled=written // len(steps),
        sends=written,
        first_send_at=min((row[3] for row in per_day), default=None),
        last_send_at=max((row[4] for row in per_day), default=None),
        by_day=[{"date": day, "count": firsts} for day, firsts, *_ in per_day if firsts],
        mx_bounced=mx_bounced,
    )
