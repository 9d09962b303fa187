"""Celery tasks of inbound events (thin: each calls one job or service).

- `poll_imap_mailboxes_task` (beat, every IMAP_POLL_SECONDS): enqueues one
  poll per enabled credential with IMAP settings whose backoff has passed.
- `poll_imap_credential_task`: one `ReplyDetectionJob`; a cache lock keeps two
  polls of the same mailbox from overlapping (a slow poll and the next tick).
- `apply_open_hits_task` (beat, every 2 s): applies the pixel loads the view queued in Redis.
- `apply_provider_event_task`: applies one stored SMTP2GO event.
- `apply_pending_provider_events_task` (beat, every minute): applies stored
  events whose task was lost (Redis restarted between commit and delivery);
  the rows in PostgreSQL are the source of truth, the broker only a nudge.
"""

import datetime

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from campaigns.models import SmtpCredential
from mailing import open_queue
from mailing.imap import ReplyDetectionJob, credentials_due_for_poll
from mailing.inbound_models import ProviderEvent
from mailing.inbound_services import provider_event_apply

LOCK_SECONDS = 15 * 60


@shared_task(name="mailing.poll_imap_mailboxes", ignore_result=True)
def poll_imap_mailboxes_task() -> int:
    ids = list(credentials_due_for_poll().values_list("pk", flat=True))
    for pk in ids:
        poll_imap_credential_task.delay(str(pk))
    return len(ids)


@shared_task(name="mailing.poll_imap_credential", ignore_result=True)
def poll_imap_credential_task(credential_id: str) -> dict | None:
    lock = f"mailing:imap-poll:{credential_id}"
    if not cache.add(lock, 1, timeout=LOCK_SECONDS):
        return None  # a poll of this mailbox is still running
    try:
        credential = SmtpCredential.objects.select_related("campaign").filter(pk=credential_id).first()
        if credential is None or not credential.imap_configured:
            return None
        result = ReplyDetectionJob(credential).run()
        return {"ok": result.ok, "replies": result.replies, "bounces": result.bounces}
    finally:
        cache.delete(lock)


@shared_task(name="mailing.apply_open_hits", ignore_result=True)
def apply_open_hits_task() -> int:
    return open_queue.open_hits_apply()


@shared_task(name="mailing.apply_provider_event", ignore_result=True)
def apply_provider_event_task(event_id: str) -> str:
    return provider_event_apply(event_id=event_id)


@shared_task(name="mailing.apply_pending_provider_events", ignore_result=True)
def apply_pending_provider_events_task() -> int:
    cutoff = timezone.now() - datetime.timedelta(seconds=getattr(settings, "PROVIDER_EVENT_GRACE_SECONDS", 30))
    ids = list(
        ProviderEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:1000]
    )
    for pk in ids:
        provider_event_apply(event_id=pk)
    return len(ids)
