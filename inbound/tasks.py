"""Celery tasks of inbound events (thin: each calls one job or service).

- `poll_imap_mailboxes_task` (beat, every IMAP_POLL_SECONDS): enqueues one
  poll per mailbox in use with IMAP settings whose backoff has passed (one
  per mailbox, whatever the number of campaigns using it).
- `poll_imap_mailbox_task`: one `ReplyDetectionJob`; a cache lock keeps two
  polls of the same mailbox from overlapping (a slow poll and the next tick).
- `apply_open_hits_task` (beat, every 2 s): applies the pixel loads the view queued in Redis.
- `apply_provider_event_task`: applies one stored SMTP2GO event.
- `apply_pending_provider_events_task` (beat, every minute): applies stored
  events whose task was lost (Redis restarted between commit and delivery)
  once they are `PROVIDER_EVENT_GRACE_SECONDS` old; the rows in PostgreSQL
  are the source of truth, the broker only a nudge.
"""

from celery import shared_task
from django.core.cache import cache

from mailboxes.models import Mailbox

from . import open_queue
from .imap import ReplyDetectionJob, mailboxes_due_for_poll
from .selectors import provider_events_pending
from .services import provider_event_apply

LOCK_SECONDS = 15 * 60


@shared_task(name="inbound.poll_imap_mailboxes", ignore_result=True)
def poll_imap_mailboxes_task() -> int:
    ids = list(mailboxes_due_for_poll().values_list("pk", flat=True))
    for pk in ids:
        poll_imap_mailbox_task.delay(str(pk))
    return len(ids)


@shared_task(name="inbound.poll_imap_mailbox", ignore_result=True)
def poll_imap_mailbox_task(mailbox_id: str) -> dict | None:
    lock = f"inbound:imap-poll:{mailbox_id}"
    if not cache.add(lock, 1, timeout=LOCK_SECONDS):
        return None  # a poll of this mailbox is still running
    try:
        mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
        if mailbox is None or not mailbox.imap_configured:
            return None
        result = ReplyDetectionJob(mailbox).run()
        return {"ok": result.ok, "replies": result.replies, "bounces": result.bounces}
    finally:
        cache.delete(lock)


@shared_task(name="inbound.apply_open_hits", ignore_result=True)
def apply_open_hits_task() -> int:
    return open_queue.open_hits_apply()


@shared_task(name="inbound.apply_provider_event", ignore_result=True)
def apply_provider_event_task(event_id: str) -> str:
    return provider_event_apply(event_id=event_id)


@shared_task(name="inbound.apply_pending_provider_events", ignore_result=True)
def apply_pending_provider_events_task() -> int:
    ids = provider_events_pending()
    for pk in ids:
        provider_event_apply(event_id=pk)
    return len(ids)
