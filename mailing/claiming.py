"""The beat tick: reclaim expired leases, claim due sends, hand them to workers.

`sends_claim_due` runs every `MAILING_TICK_SECONDS` (Celery beat). Any number
of ticks may run at once (two beat processes, a slow tick overlapping the
next): each chunk is claimed with `SELECT … FOR UPDATE SKIP LOCKED` and
marked `queued` with a claim token and a lease in the same statement, so a
row is claimed by exactly one tick. One task per (credential, chunk) is
enqueued after the commit; if the broker loses it (Redis restarted or
flushed), the lease expires and the row is claimed again, because a
`queued` row has not been handed to any server yet.

Only rows of active campaigns through enabled credentials are claimed
(`mailing.eligibility.CLAIMABLE`, the same conditions the worker checks
again before it sends): a paused campaign's due rows wait for resume, a
disabled credential's rows wait for re-enabling (or are moved by the
bounce-rate guard).

Expired leases: `queued` → `scheduled` (safe: the worker commits `sending`
before it hands anything over); `sending` → `unknown` (the outcome is not
known: never re-sent automatically; see `sends_release_unknown`); `sent`
rows whose consequences their dead worker did not apply get them applied
(`mailing.outcomes.sent_outcomes_apply`).
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .eligibility import CLAIMABLE, where
from .models import ScheduledSend
from .outcomes import sent_outcomes_reap

Status = ScheduledSend.Status


@dataclass
class TickReport:
    requeued: int = 0
    unknown: int = 0
    claimed: int = 0
    chunks: list[tuple[Any, list[Any], str]] = field(default_factory=list)


def sends_reap_expired_leases(*, now: datetime.datetime | None = None) -> tuple[int, int]:
    """(queued rows put back to scheduled, sending rows marked unknown) whose lease expired.

    Also applies the consequences of sent rows that a dead worker left with `outcome_pending`.
    """
    now = now or timezone.now()
    with transaction.atomic():
        requeued = ScheduledSend.objects.filter(status=Status.QUEUED, lease_until__lt=now).update(
            status=Status.SCHEDULED, claimed_by="", lease_until=None, updated_at=now
        )
        unknown = ScheduledSend.objects.filter(status=Status.SENDING, lease_until__lt=now).update(
            status=Status.UNKNOWN,
            last_error="The worker's lease expired while sending: outcome unknown.",
            updated_at=now,
        )
    sent_outcomes_reap(now=now)
    return requeued, unknown


_CLAIM_SQL = f"""
WITH due AS (
    SELECT s.id FROM mailing_scheduledsend s
    WHERE s.status = 'scheduled' AND s.send_at <= %(now)s AND {where(CLAIMABLE)}
    ORDER BY s.send_at
    LIMIT %(limit)s
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE mailing_scheduledsend s SET status = 'queued', claimed_by = %(token)s, lease_until = %(lease)s,
    updated_at = %(now)s
FROM due WHERE s.id = due.id
RETURNING s.id, s.smtp_credential_id
"""


def _claim_chunk(now: datetime.datetime, token: str, limit: int) -> list[tuple[Any, Any]]:
    lease = now + datetime.timedelta(seconds=settings.MAILING_LEASE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"now": now, "limit": limit, "token": token, "lease": lease})
        return cursor.fetchall()


def sends_claim_due(
    *, enqueue: Callable[[Any, list[Any], str], None], now: datetime.datetime | None = None
) -> TickReport:
    """One tick: reap leases, then claim up to `MAILING_TICK_MAX_CHUNKS` chunks of due rows.

    Each chunk is its own transaction; `enqueue(credential_id, send_ids, claim_token)`
    runs after that chunk commits, once per credential present in it.
    """
    now = now or timezone.now()
    report = TickReport()
    report.requeued, report.unknown = sends_reap_expired_leases(now=now)
    size = settings.MAILING_CHUNK_SIZE
    for _ in range(settings.MAILING_TICK_MAX_CHUNKS):
        token = f"tick:{uuid.uuid4().hex}"
        with transaction.atomic():
            claimed = _claim_chunk(now, token, size)
            by_credential: dict[Any, list[Any]] = defaultdict(list)
            for send_id, credential_id in claimed:
                by_credential[credential_id].append(send_id)
            for credential_id, ids in by_credential.items():
                report.chunks.append((credential_id, ids, token))
                transaction.on_commit(lambda c=credential_id, i=ids, t=token: enqueue(c, i, t))
        report.claimed += len(claimed)
        if len(claimed) < size:
            break
    return report
