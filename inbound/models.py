"""What comes back after a send: tracking hits, inbound mail, provider events, IMAP sync state.

These models were the `mailing` app's until issue 12; migration
`inbound/0001_initial` moved them here without copying a row. Idempotency
lives in unique constraints here:
`InboundMessage.message_id` (a re-poll never counts a message twice) and
`ProviderEvent (account, idempotency_key)` (a webhook redelivered changes
nothing the second time).
"""

from django.db import models
from django.db.models import Q

from accounts.models import Account
from campaigns.models import SmtpCredential
from core.ids import uuid7
from enrollments.models import Enrollment
from mailboxes.models import Mailbox
from mailing.models import ScheduledSend


class TrackingEvent(models.Model):
    """A pixel load, a click or an unsubscribe through one of our signed links.

    `counted` is False for hits that did not count as opens: a known image
    proxy or prefetcher within `OPEN_PREFETCH_WINDOW_SECONDS` of the send
    (see `inbound.services.is_prefetch`). Repeated pixel loads after
    the first counted open are not stored (they change nothing).
    """

    class Kind(models.TextChoices):
        OPEN = "open"
        CLICK = "click"
        UNSUBSCRIBE = "unsubscribe"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    scheduled_send = models.ForeignKey(
        ScheduledSend, on_delete=models.CASCADE, related_name="tracking_events", db_index=False
    )
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="tracking_events")
    counted = models.BooleanField(default=True)
    url = models.TextField(blank=True, default="")
    user_agent = models.CharField(max_length=512, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["scheduled_send", "kind"], name="tracking_send_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.scheduled_send_id}"


class InboundMessage(models.Model):
    """A message read from one of our mailboxes that concerns one of our sends.

    Only messages that match a send or an enrolled contact are stored (the
    mailbox holds other mail too). Auto-replies are stored with
    `kind=auto_reply` and do not move the enrollment; DSNs are `bounce`
    (5.x.x, applied) or `delay` (4.x.x, recorded only).
    """

    class Kind(models.TextChoices):
        REPLY = "reply"
        AUTO_REPLY = "auto_reply"
        BOUNCE = "bounce"
        DELAY = "delay"

    class MatchedBy(models.TextChoices):
        HEADERS = "headers"  # In-Reply-To / References, or the DSN's returned headers
        SENDER = "sender"  # From is an enrolled contact of a campaign sent through this mailbox
        RECIPIENT = "recipient"  # a DSN whose returned headers were missing: the failed recipient

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # Unique per mailbox, not globally: one reply copied to two of our mailboxes (two accounts, or
    # two campaigns) is a reply to each of them.
    message_id = models.CharField(max_length=998)
    # The mailbox it was read from (kept, unset, when the mailbox is deleted: the enrollment's history).
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.SET_NULL, null=True, blank=True, related_name="inbound_messages", db_index=False
    )
    # The campaign's use of the mailbox that sent the matched message (its stats and bounce guard).
    smtp_credential = models.ForeignKey(
        SmtpCredential, on_delete=models.SET_NULL, null=True, blank=True, related_name="inbound_messages"
    )
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.SET_NULL, null=True, blank=True, related_name="inbound_messages"
    )
    scheduled_send = models.ForeignKey(
        ScheduledSend, on_delete=models.SET_NULL, null=True, blank=True, related_name="inbound_messages"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    matched_by = models.CharField(max_length=16, choices=MatchedBy.choices)
    from_email = models.CharField(max_length=320, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    received_at = models.DateTimeField()
    snippet = models.TextField(blank=True, default="")
    auto_reply_reason = models.CharField(max_length=255, blank=True, default="")
    dsn_recipient = models.CharField(max_length=320, blank=True, default="")
    dsn_status = models.CharField(max_length=16, blank=True, default="")
    dsn_diagnostic = models.TextField(blank=True, default="")
    applied = models.BooleanField(default=False, help_text="Whether it moved the enrollment.")
    imap_uid = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "message_id"], name="inbound_unique_per_mailbox"),
        ]
        indexes = [models.Index(fields=["enrollment", "received_at"], name="inbound_enrollment")]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"


class ImapSyncState(models.Model):
    """Where reply detection stands for one mailbox's INBOX, and its last failure.

    `uidvalidity` + `last_uid` make each poll incremental; when the server's
    UIDVALIDITY differs, UIDs were renumbered and the folder is re-read from
    the start (InboundMessage's unique Message-ID keeps that from counting
    anything twice). After a failure the next attempt waits an exponential
    backoff (`next_attempt_at`), so a wrong password never loops tightly.
    """

    mailbox = models.OneToOneField(Mailbox, on_delete=models.CASCADE, primary_key=True, related_name="imap_sync_state")
    folder = models.CharField(max_length=255, default="INBOX")
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "IMAP sync state"

    def __str__(self) -> str:
        return f"IMAP {self.mailbox_id}"


class ProviderEvent(models.Model):
    """One event posted by an email provider's webhook (SMTP2GO), kept raw and normalized.

    Unique per (account, idempotency_key): the key is built from the
    provider's `email_id`, `event`, `rcpt` and `time`, so a redelivery is
    recognised and answered 200 without being applied again.
    """

    class Type(models.TextChoices):
        BOUNCED = "bounced"  # hard bounce
        DEFERRED = "deferred"  # soft bounce: recorded, no state change
        REJECTED = "rejected"
        COMPLAINED = "complained"  # spam report
        UNSUBSCRIBED = "unsubscribed"
        DELIVERED = "delivered"
        PROCESSED = "processed"
        OPENED = "opened"
        CLICKED = "clicked"
        UNKNOWN = "unknown"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="provider_events", db_index=False)
    provider = models.CharField(max_length=32, default="smtp2go")
    idempotency_key = models.CharField(max_length=255)
    event_type = models.CharField(max_length=16, choices=Type.choices)
    provider_event = models.CharField(max_length=64, blank=True, default="")
    recipient = models.CharField(max_length=320, blank=True, default="")
    message_id = models.CharField(max_length=998, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    occurred_at = models.DateTimeField(null=True, blank=True)
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.SET_NULL, null=True, blank=True, related_name="provider_events"
    )
    scheduled_send = models.ForeignKey(
        ScheduledSend, on_delete=models.SET_NULL, null=True, blank=True, related_name="provider_events"
    )
    raw = models.JSONField()
    outcome = models.CharField(max_length=64, blank=True, default="", help_text="What applying it did.")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="provider_event_unique_key"),
        ]
        indexes = [
            models.Index(fields=["received_at"], condition=Q(processed_at__isnull=True), name="provider_event_pending")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_event} {self.recipient}"

    @property
    def awaits_applying(self) -> bool:
        """Stored, not applied yet: `inbound.services.provider_event_apply` has work to do."""
        return self.processed_at is None
