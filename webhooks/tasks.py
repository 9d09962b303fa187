"""Celery tasks of the webhooks app (thin: each calls one service).

`deliver_webhooks_task` runs on Celery beat every few seconds. It claims and
delivers in the same worker instead of enqueueing a task per chunk: the rows
in PostgreSQL are the queue, so nothing is lost if Redis restarts, and a
claim never waits in a broker queue while its lease runs out (a lease must
only cover the HTTP attempts, whose length the timeout bounds). Ticks that
overlap cooperate through SKIP LOCKED, so a backlog is drained by as many
workers as are free; each tick stops when nothing is due or after
WEBHOOKS_TICK_BUDGET_SECONDS, so one worker is never held for long.
"""

from celery import shared_task
from django.conf import settings

from .delivery import webhook_deliveries_run
from .selectors import webhook_events_purgeable
from .services import webhook_events_purge


@shared_task(name="webhooks.deliver_webhooks", ignore_result=True)
def deliver_webhooks_task() -> int:
    return webhook_deliveries_run(budget_seconds=settings.WEBHOOKS_TICK_BUDGET_SECONDS)


@shared_task(name="webhooks.purge_webhook_events", ignore_result=True)
def purge_webhook_events_task() -> int:
    return webhook_events_purge(queryset=webhook_events_purgeable(days=settings.WEBHOOKS_EVENT_RETENTION_DAYS))
