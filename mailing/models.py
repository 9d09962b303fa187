"""The send outbox: one ScheduledSend row per (enrollment, step).

Scheduled work lives here, in PostgreSQL, never in the broker (DESIGN.md, "The
send pipeline"): dispatch writes these rows, the beat tick claims the due
ones with SKIP LOCKED, and workers send them exactly once.

Status:
    scheduled → queued (claimed, with a lease) → sending (committed just
    before the message is handed to the server) → sent | failed
    scheduled | queued → canceled (the enrollment stopped, the campaign was deleted, …)
    sending, lease expired → unknown (the outcome is not known: never re-sent
    automatically; an operator may release it)
    `sent` with `outcome_pending`: the server took the message and the row
    says so, but its consequences (the enrollment's transition and events,
    completion, the day's counters) are still to be applied, by the worker's
    next batch or, if the worker died, by the lease reaper
    sending → bounced (the server refused the recipient with a 5xx: a message
    was handed over and refused; counts as a message in bounce rates)

`SmtpCredentialDay` and `AccountMonth` are the reservation counters of the
daily and monthly limits (reserved with a conditional UPDATE before a send);
`CampaignPause` remembers when a campaign was paused, so resume can shift
its schedule by the time paused.
"""

from django.db import models
from django.db.models import Q

from accounts.models import Account
from campaigns.models import Campaign, SequenceStep, SmtpCredential
from core.ids import uuid7
from enrollments.models import Enrollment


class ScheduledSend(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        CANCELED = "canceled"
        UNKNOWN = "unknown"
        BOUNCED = "bounced"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # Denormalised from the enrollment: the forecast, pause/resume and the
    # stats group by campaign without a join over millions of enrollments.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="scheduled_sends", db_index=False)
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="scheduled_sends", db_index=False)
    step = models.ForeignKey(SequenceStep, on_delete=models.CASCADE, related_name="scheduled_sends")
    smtp_credential = models.ForeignKey(
        SmtpCredential, on_delete=models.SET_NULL, null=True, blank=True, related_name="scheduled_sends"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    send_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    message_id = models.CharField(max_length=255, null=True, blank=True)  # unique: see Meta
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    outcome_pending = models.BooleanField(
        default=False,
        db_default=False,  # set-based inserts (dispatch) leave it out
        help_text="Sent, but its enrollment transition, events and counters are not applied yet.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="send_unique_enrollment_step"),
            # A constraint rather than unique=True: the same unique index without the LIKE index
            # PostgreSQL would get beside it, which nothing uses and every send's updates maintained.
            models.UniqueConstraint(fields=["message_id"], name="send_unique_message_id"),
        ]
        indexes = [
            # The due-claim: scheduled rows by time, nothing else in the index.
            models.Index(fields=["send_at"], condition=Q(status="scheduled"), name="send_due"),
            # Forecast and pause/resume: a campaign's rows by status and time.
            models.Index(fields=["campaign", "status", "send_at"], name="send_campaign_status"),
            # Leases to reclaim.
            models.Index(fields=["lease_until"], condition=Q(status__in=["queued", "sending"]), name="send_leased"),
            # Sent rows whose consequences a dead worker left unapplied.
            models.Index(fields=["lease_until"], condition=Q(outcome_pending=True), name="send_outcome_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.enrollment_id} step {self.step_id} ({self.status})"


class SmtpCredentialDay(models.Model):
    """One credential's counters for one day (in the account's time zone).

    `reserved` is the daily-limit counter: incremented with
    `UPDATE … WHERE reserved < daily_limit` before a message is handed over,
    given back when the send is known not to have happened (4xx, connect
    error). `sent` and `bounced` count outcomes: messages the server took,
    and messages it refused with a 5xx; together they are the messages sent
    through the credential (the bounce-rate denominator).
    """

    id = models.BigAutoField(primary_key=True)
    smtp_credential = models.ForeignKey(SmtpCredential, on_delete=models.CASCADE, related_name="days", db_index=False)
    day = models.DateField()
    reserved = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["smtp_credential", "day"], name="credential_day_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.smtp_credential_id} {self.day}: {self.reserved} reserved"


class AccountMonth(models.Model):
    """An account's sends in one calendar month (its time zone): the plan-limit counter.

    `reserved` is incremented with `UPDATE … WHERE reserved < monthly_limit`
    in the same transaction as the daily reservation, and given back with it.
    """

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="months", db_index=False)
    month = models.DateField(help_text="The first day of the month.")
    reserved = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "month"], name="account_month_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.month:%Y-%m}: {self.reserved}"


class CampaignPause(models.Model):
    """A pause of a campaign; the open one (`resumed_at` null) is the current pause."""

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pauses")
    paused_at = models.DateTimeField()
    resumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(resumed_at__isnull=True), name="campaign_one_open_pause"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} paused {self.paused_at:%Y-%m-%d %H:%M}"
