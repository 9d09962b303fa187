"""Outbound webhooks: endpoints, the event outbox, and one delivery per (event, endpoint).

`WebhookEvent` rows are written by other apps' services inside their own
transactions (`webhooks.services.webhook_event_record`), together with one
`WebhookDelivery` per subscribed endpoint. The PostgreSQL rows are the queue:
a delivery is due when `status = pending` and `next_attempt_at <= now`; a
claimed delivery has `next_attempt_at` pushed to the end of its lease, so a
worker that dies leaves a row that simply becomes due again.
"""

import uuid

from django.db import models

from accounts.models import Account
from core.fields import EncryptedTextField

from .events import EVENT_TYPES

URL_MAX_LENGTH = 2048


class WebhookEndpoint(models.Model):
    """A URL of an account that receives signed event deliveries."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=URL_MAX_LENGTH)
    description = models.CharField(max_length=500, blank=True, default="")
    events = models.JSONField(default=list, blank=True, help_text="Subscribed event types; empty means every type.")
    secret = EncryptedTextField(editable=False, help_text="whsec_…, encrypted at rest; never shown.")
    previous_secret = EncryptedTextField(blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Until then deliveries carry a second signature made with the old secret."
    )
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="First failed attempt since the last success; after 5 days the endpoint is disabled.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["account", "created_at", "id"], name="webhook_endpoint_keyset")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(enabled=True) | models.Q(disabled_at__isnull=False),
                name="webhook_endpoint_disabled_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


class WebhookEvent(models.Model):
    """One event of an account (the outbox). Its id is the `webhook-id` header of every attempt."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="webhook_events")
    type = models.CharField(max_length=64, choices=[(t, t) for t in EVENT_TYPES])
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["account", "created_at"], name="webhook_event_account_created")]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class WebhookDelivery(models.Model):
    """One event to one endpoint, tried until a 2xx or the retry schedule runs out."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed (retries exhausted)"
        CANCELLED = "cancelled", "cancelled (endpoint disabled)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts since creation or the last redeliver.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When pending: due time (or the end of the current lease)."
    )
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(
                condition=~models.Q(status="pending") | models.Q(next_attempt_at__isnull=False),
                name="webhook_delivery_pending_is_scheduled",
            ),
        ]
        indexes = [
            # The claim query: due pending rows, oldest first.
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due", condition=models.Q(status="pending")),
            models.Index(fields=["endpoint", "-created_at", "-id"], name="webhook_delivery_endpoint_new"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class WebhookDeliveryAttempt(models.Model):
    """The log of every HTTP attempt of a delivery (what the receiver answered, how long it took)."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    succeeded = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["delivery", "-attempted_at"], name="webhook_attempt_recent")]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.attempted_at:%Y-%m-%d %H:%M:%S}"
