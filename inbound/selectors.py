"""Reads of inbound events: the sweeper's pending provider events, a mailbox's reply-detection health."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

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


def mailbox_imap_status(mailbox: Any) -> dict[str, Any]:
    """Reply detection's health for one mailbox, for the mailbox view and each campaign's stats.

    Reads `mailbox.imap_sync_state` as loaded by the caller (select_related:
    no query here). `imap_status`: `not_configured`, `never_polled`, `ok`, or
    `failing` (the last attempt failed; `imap_last_error` says why and
    `imap_next_attempt_at` when it is tried again, after a backoff).
    """
    state = getattr(mailbox, "imap_sync_state", None) if mailbox.imap_configured else None
    failing = bool(state and state.consecutive_failures)
    if not mailbox.imap_configured:
        status = "not_configured"
    elif failing:
        status = "failing"
    elif state is None or state.last_polled_at is None:
        status = "never_polled"
    else:
        status = "ok"
    return {
        "imap_status": status,
        "imap_last_polled_at": state.last_polled_at if state else None,
        "imap_last_error": (state.last_error or None) if failing else None,
        "imap_next_attempt_at": state.next_attempt_at if failing else None,
    }
