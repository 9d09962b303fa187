"""Outreaches, campaigns, their sequence steps and SMTP credentials.

Value rules live on the fields (validators) and in `clean()`, so the API
(through `campaigns.services`) and the admin's forms refuse the same input;
the database repeats the ones that matter as check constraints.
"""

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from accounts.models import Account
from mailboxes.models import Mailbox

from .templating import validate_merge_tags


class Outreach(models.Model):
    """A group of sibling campaigns; `unique_contacts` keeps a contact in at most one of them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="outreaches")
    name = models.CharField(max_length=255)
    unique_contacts = models.BooleanField(
        default=False, help_text="Skip contacts already enrolled in a sibling campaign of this outreach."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["account", "created_at", "id"], name="outreach_account_keyset")]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    """A multi-step sequence sent to its enrollments through its SMTP credentials.

    Status: pending → active (first dispatch) ⇄ paused; completed when no
    enrollment has anything left to send.

    Kind: a `journey` (journeys app) is a campaign that people enter one by
    one, always on: it runs through the same steps, credentials, send
    pipeline and state machine, is never completed, and is shown as a
    journey rather than among the campaigns.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        PAUSED = "paused"
        COMPLETED = "completed"

    class Kind(models.TextChoices):
        CAMPAIGN = "campaign"
        JOURNEY = "journey"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="campaigns")
    outreach = models.ForeignKey(Outreach, on_delete=models.SET_NULL, null=True, blank=True, related_name="campaigns")
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    kind = models.CharField(
        max_length=16, choices=Kind.choices, default=Kind.CAMPAIGN, db_default=Kind.CAMPAIGN, editable=False
    )
    min_wait_seconds = models.PositiveIntegerField(default=120, help_text="Least random wait between two sends.")
    max_wait_seconds = models.PositiveIntegerField(default=420, help_text="Most random wait between two sends.")
    verify_email_mx = models.BooleanField(default=False, help_text="Check each domain's MX record before sending.")
    bounce_rate_threshold = models.FloatField(
        default=8.0,
        help_text="This campaign's bounce rate (%) through a mailbox at which the mailbox is disabled, for every "
        "campaign using it; in (0, 100].",
    )
    track_clicks = models.BooleanField(default=False, help_text="Rewrite links to count clicks.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "created_at", "id"], name="campaign_account_keyset"),
            models.Index(fields=["status"], name="campaign_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_wait_seconds__lte=F("max_wait_seconds")), name="campaign_wait_range"
            ),
            models.CheckConstraint(
                condition=Q(bounce_rate_threshold__gt=0) & Q(bounce_rate_threshold__lte=100),
                name="campaign_bounce_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.bounce_rate_threshold is not None and not 0 < self.bounce_rate_threshold <= 100:
            errors["bounce_rate_threshold"] = ["Must be greater than 0 and at most 100."]
        if (
            self.min_wait_seconds is not None
            and self.max_wait_seconds is not None
            and self.min_wait_seconds > self.max_wait_seconds
        ):
            errors["max_wait_seconds"] = ["Must be greater than or equal to min_wait_seconds."]
        if errors:
            raise ValidationError(errors)


class SequenceStep(models.Model):
    """Step N of a campaign: sent `delay_minutes` after step N-1 (step 1: at dispatch)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sequence_steps")
    position = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    subject = models.CharField(max_length=998, validators=[validate_merge_tags])
    body_html = models.TextField(validators=[validate_merge_tags])
    body_text = models.TextField(
        blank=True, default="", validators=[validate_merge_tags], help_text="Empty: derived from the HTML."
    )
    delay_minutes = models.PositiveIntegerField(default=0, help_text="Wait after the previous step.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="step_unique_position"),
            models.CheckConstraint(condition=Q(position__gte=1), name="step_position_from_1"),
        ]

    def __str__(self) -> str:
        return f"Step {self.position}: {self.subject}"


class SmtpCredential(models.Model):
    """A campaign's use of one of its account's mailboxes (the seed's nested `smtp_credentials`).

    The mailbox holds the settings, secrets, daily limit and health, shared
    by every campaign using it; the credential holds what is the campaign's
    own: its label and an optional lower cap (`campaign_daily_limit`) on
    the first messages this campaign sends through the mailbox per day.
    Its id is the one the seed's shows, stats and `reenable` use.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="smtp_credentials")
    # RESTRICT, not PROTECT: a mailbox in use cannot be deleted alone, but deleting its account (which
    # deletes the campaigns too) may take it.
    mailbox = models.ForeignKey(Mailbox, on_delete=models.RESTRICT, related_name="credentials")
    label = models.CharField(max_length=255, blank=True, default="")
    campaign_daily_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="This campaign's own cap on first messages per day through the mailbox "
        "(empty: the mailbox's daily limit alone).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "SMTP credential"
        constraints = [
            models.CheckConstraint(
                condition=Q(campaign_daily_limit__isnull=True) | Q(campaign_daily_limit__gte=1),
                name="credential_campaign_daily_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.label or str(self.mailbox)
