"""Enrollments (a contact in a campaign, with its state) and enrollment skips.

Keys: an enrollment's primary key is a BigAutoField integer `id`, and its
API identity is the unique UUID `uuid`. Native surfaces show `uuid` as `"id"`
(DESIGN: every resource has a UUID id); the /v1 compat surface shows the
integer `id` its seed documents. An integer key keeps the table's largest
indexes and every foreign key to it (the send outbox holds several rows per
enrollment) at 8 bytes and insert-ordered, and the compat id is then simply
the key. Set-based inserts supply `uuid` themselves (`gen_random_uuid()`).

The state machine (issue 4) lives in `enrollments/services.py`; the check
constraints below hold whatever writes: a status implies its timestamp.

`EnrollmentTally` is a rollup of enrollment counts that database triggers
keep exact on every INSERT, UPDATE and DELETE of enrollments (migration
0002), whoever writes them (set-based enroll, the state machine, cascades).
The campaign stats read it instead of aggregating up to millions of rows on
every request; `enrollments.selectors.campaign_tally_rebuild` recomputes it.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Campaign, SmtpCredential
from contacts.models import Contact


class Enrollment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        OPENED = "opened"
        REPLIED = "replied"
        BOUNCED = "bounced"

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # db_index off: the unique (campaign, contact) index serves campaign lookups
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollments", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="enrollments")
    smtp_credential = models.ForeignKey(
        SmtpCredential, on_delete=models.SET_NULL, null=True, blank=True, related_name="enrollments"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    batch_number = models.PositiveIntegerField(default=0)
    # Not auto_now_add: a priority enrollment is dated 2000-01-01 to go first in its batch.
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    bounce_reason = models.TextField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # A campaign enrolls a contact once (round 1). A journey may take a contact again once its last
    # enrollment finished: each time is a new enrollment, numbered on.
    round = models.PositiveIntegerField(default=1, db_default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "contact", "round"], name="enrollment_unique_contact_round_per_campaign"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["sent", "opened", "replied"]) | Q(sent_at__isnull=False),
                name="enrollment_sent_has_sent_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="opened") | Q(opened_at__isnull=False), name="enrollment_opened_has_opened_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="replied") | Q(replied_at__isnull=False),
                name="enrollment_replied_has_replied_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="bounced") | Q(bounced_at__isnull=False),
                name="enrollment_bounced_has_bounced_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="pending") | (Q(sent_at__isnull=True) & Q(bounced_at__isnull=True)),
                name="enrollment_pending_never_sent",
            ),
        ]
        indexes = [
            # The dispatcher's "pending in batch N"; rebuilding the tally.
            models.Index(fields=["campaign", "batch_number", "status"], name="enrollment_campaign_batch"),
            models.Index(fields=["campaign", "status", "created_at", "id"], name="enrollment_campaign_status"),
            # /sequences/v1's keyset: each campaign's enrollments in key order (sequences_read).
            models.Index(fields=["campaign", "id"], name="enrollment_campaign_keyset"),
            # recent_bounces: the newest ten, straight off the index.
            models.Index(
                fields=["campaign", "-bounced_at"],
                condition=Q(bounced_at__isnull=False),
                name="enrollment_campaign_bounces",
            ),
            # credentials[].sent_today: a range scan over today's sends only.
            models.Index(
                fields=["smtp_credential", "sent_at"],
                condition=Q(sent_at__isnull=False),
                name="enrollment_credential_sent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.campaign_id} ({self.status})"


class EnrollmentSkip(models.Model):
    """A contact an enroll left out, and why (kept for the skips audit)."""

    class Kind(models.TextChoices):
        MX_INVALID = "mx_invalid"
        CROSS_CAMPAIGN_DUPLICATE = "cross_campaign_duplicate"
        ALREADY_ENROLLED = "already_enrolled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollment_skips", db_index=False)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="enrollment_skips"
    )
    email = models.CharField(max_length=254)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Two concurrent enrolls of one import record each skip once.
            models.UniqueConstraint(fields=["campaign", "contact", "kind"], name="skip_unique_per_kind"),
        ]
        indexes = [
            models.Index(fields=["campaign", "kind", "-created_at"], name="skip_campaign_kind_recent"),
            models.Index(fields=["campaign", "-created_at"], name="skip_campaign_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.email} skipped ({self.kind})"


NO_CREDENTIAL = uuid.UUID(int=0)  # the tally's key for "no credential assigned yet"


class EnrollmentTally(models.Model):
    """How many enrollments of a campaign share one (batch, status, credential, flags) key.

    Written only by the triggers of migration 0002 (never by application
    code); a row whose count falls to zero is deleted. `campaign_id` is a
    plain column, not a foreign key: the rows go away with the enrollments
    they count, in the same statement, whichever order a cascade runs in.
    `smtp_credential_id` is `NO_CREDENTIAL` (the nil UUID) for an enrollment
    with none, so the key has no NULL in it.
    """

    id = models.BigAutoField(primary_key=True)
    campaign_id = models.UUIDField()
    batch_number = models.PositiveIntegerField()
    status = models.CharField(max_length=16)
    smtp_credential_id = models.UUIDField()
    has_sent = models.BooleanField(help_text="sent_at is set")
    has_opened = models.BooleanField(help_text="opened_at is set")
    has_replied = models.BooleanField(help_text="replied_at is set")
    n = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "campaign_id",
                    "batch_number",
                    "status",
                    "smtp_credential_id",
                    "has_sent",
                    "has_opened",
                    "has_replied",
                ],
                name="enrollment_tally_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} batch {self.batch_number} {self.status}: {self.n}"
