"""Outreaches, campaigns, their sequence steps and SMTP credentials.

Value rules live on the fields (validators) and in `clean()`, so the API
(through `campaigns.services`) and the admin's forms refuse the same input;
the database repeats the ones that matter as check constraints.
"""

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from accounts.models import Account
from core.fields import EncryptedTextField

from .templating import validate_merge_tags


def _looks_like_address(value: str) -> bool:
    local, at, domain = (value or "").rpartition("@")
    return bool(at and local and "." in domain and not any(c.isspace() for c in value))


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
        help_text="Per-credential bounce rate (%) at which the credential is disabled; in (0, 100].",
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
    """A mailbox a campaign sends through (and, with IMAP, reads replies from).

    Passwords are Fernet-encrypted at rest and never leave the server.
    """

    class Security(models.TextChoices):
        STARTTLS = "starttls"
        SSL = "ssl"
        NONE = "none"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="smtp_credentials")
    label = models.CharField(max_length=255, blank=True, default="")
    from_email = models.CharField(
        max_length=254,
        blank=True,
        help_text="Defaults to the SMTP username when that is an address; without one, nothing is sent.",
    )
    from_name = models.CharField(max_length=255, blank=True, default="")
    smtp_host = models.CharField(max_length=255)
    smtp_port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    smtp_username = models.CharField(max_length=255)
    smtp_password = EncryptedTextField()
    smtp_security = models.CharField(
        max_length=8, choices=Security.choices, blank=True, help_text="Empty: ssl on port 465, starttls otherwise."
    )
    daily_limit = models.PositiveIntegerField(default=200, validators=[MinValueValidator(1)])
    imap_host = models.CharField(max_length=255, blank=True, default="")
    imap_port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    imap_username = models.CharField(max_length=255, blank=True, default="")
    imap_password = EncryptedTextField(blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "SMTP credential"
        constraints = [
            models.CheckConstraint(condition=Q(daily_limit__gte=1), name="credential_daily_limit_positive"),
            models.CheckConstraint(
                condition=Q(smtp_port__gte=1) & Q(smtp_port__lte=65535), name="credential_smtp_port_range"
            ),
            models.CheckConstraint(
                condition=Q(imap_port__isnull=True) | (Q(imap_port__gte=1) & Q(imap_port__lte=65535)),
                name="credential_imap_port_range",
            ),
            models.CheckConstraint(
                condition=Q(smtp_security__in=["starttls", "ssl", "none"]), name="credential_security_known"
            ),
        ]

    def __str__(self) -> str:
        return self.label or self.from_email or self.smtp_username

    @property
    def imap_configured(self) -> bool:
        """Reply detection needs a host, a username and a password."""
        return bool(self.imap_host and self.imap_username and self.imap_password)

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None

    @property
    def not_ready_reason(self) -> str | None:
        """Why nothing can be sent through this credential yet (None: ready).

        A credential may be saved without a sender address (the seed's
        example has an `smtp_username` that is no address and no
        `from_email`); dispatch and test sends refuse it until one is set.
        """
        if not self.from_email:
            return (
                "No sender address: smtp_username is not an email address and from_email is empty; "
                "set from_email (the address messages are sent from)."
            )
        return None

    @property
    def is_ready(self) -> bool:
        return self.not_ready_reason is None

    def apply_defaults(self) -> None:
        """Fill `smtp_security` from the port and `from_email` from an address-like username."""
        if not self.smtp_security and self.smtp_port:
            self.smtp_security = self.Security.SSL if self.smtp_port == 465 else self.Security.STARTTLS
        if not self.from_email and _looks_like_address(self.smtp_username):
            self.from_email = self.smtp_username.strip()

    def clean(self) -> None:
        self.apply_defaults()
        errors = {}
        # No from_email at all is accepted: the credential is shown not ready (`not_ready_reason`).
        if self.from_email and not _looks_like_address(self.from_email):
            errors["from_email"] = ["Enter a valid email address."]
        if any(c in "\r\n" for c in f"{self.from_email}{self.from_name}"):
            errors.setdefault("from_name", []).append("Line breaks are not allowed in a header.")
        if self.imap_host and not self.imap_port:
            self.imap_port = 993
        if errors:
            raise ValidationError(errors)
