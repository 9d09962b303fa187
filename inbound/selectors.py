"""Reads of inbound events."""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.utils import timezone

from .models import ProviderEvent


def provider_events_pending(*, limit: int = 1000) -> list[uuid.UUID]:
    """Ids of stored provider events not applied `PROVIDER_EVENT_GRACE_SECONDS` after they arrived, oldest first.

    Their task was lost (the broker restarted between the commit and the
    delivery); younger ones are left to the task that is on its way.
    """
    cutoff = timezone.now() - datetime.timedelta(seconds=settings.PROVIDER_EVENT_GRACE_SECONDS)
    return list(
        ProviderEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
