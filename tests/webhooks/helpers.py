from django.utils import timezone

from webhooks.models import WebhookDelivery
from webhooks.tasks import deliver_webhooks_task


def deliver_due() -> int:
    """One beat tick, run in-process: claims and delivers everything due."""
    return deliver_webhooks_task()


def make_due(**filters) -> None:
    """Move the clock instead of waiting: pending deliveries become due now."""
    WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, **filters).update(
        next_attempt_at=timezone.now()
    )
