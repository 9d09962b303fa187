"""Delivering the outbox: claim due deliveries, POST them signed, record the outcome.

The delivery half of the webhooks services (writes, one transaction each).

* `webhook_deliveries_claim` takes up to `limit` due rows with
  `SELECT … FOR UPDATE SKIP LOCKED`, gives them a claim token, counts the
  attempt and pushes `next_attempt_at` to the end of a lease: concurrent
  claimers never take the same row, and rows of a worker that dies become
  due again by themselves when the lease ends.
* `webhook_deliveries_deliver` POSTs each claimed row and writes the outcomes
  in batches, only onto rows still holding its token. It stops while the
  lease can still cover a whole attempt and gives the rest back, so two
  workers never send the same row at the same time.
* `webhook_deliveries_run` is the loop the Celery beat task and the
  benchmark run: claim a chunk, deliver it, until nothing is due.

At-least-once: a worker killed after the receiver answered but before the
outcome was written sends again later, with the same `webhook-id`, which is
what receivers deduplicate on.
"""

from __future__ import annotations

import email.utils
import random
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from . import transport
from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from .services import webhook_endpoint_disable
from .signing import payload_body, signature_headers

# Delay before attempt n+1 after attempt n failed (attempt 1 is immediate).
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
]
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1  # ± 10 % of each delay, so a burst of failures does not come back as a burst
MAX_RETRY_AFTER = timedelta(hours=24)
DISABLE_AFTER = timedelta(days=5)
ATTEMPT_GRACE = timedelta(seconds=30)  # margin for signing and bookkeeping around one attempt
CLAIM_CHUNK = 50
# How long a claim holds its rows. A worker killed mid-chunk leaves rows that are due again after it;
# a live worker stops attempting while the lease could still cover a whole attempt and gives the rest back.
CLAIM_LEASE_MIN = timedelta(minutes=2)


def retry_delay(attempts: int) -> timedelta | None:
    """The jittered wait after the `attempts`-th failed attempt, or None when the schedule is over."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[max(attempts, 1) - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 (jitter, not security)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date, capped at a day; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            delay = email.utils.parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return max(timedelta(0), min(delay, MAX_RETRY_AFTER))


def _timeout() -> float:
    return float(settings.WEBHOOKS_DELIVERY_TIMEOUT_SECONDS)


def claim_lease() -> timedelta:
    return max(CLAIM_LEASE_MIN, timedelta(seconds=3 * _timeout()) + 2 * ATTEMPT_GRACE)


def webhook_deliveries_claim(*, limit: int = CLAIM_CHUNK, now: datetime | None = None) -> tuple[uuid.UUID, list]:
    """Claim up to `limit` due deliveries for `claim_lease()`. Returns (claim token, ids); nobody else gets them.

    The attempt is counted here, so a delivery that kills its worker every time
    still runs out of attempts instead of looping forever.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            # a disabled endpoint's rows are never claimed: they would be skipped and claimed again forever
            .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            lease_end = now + claim_lease()
            WebhookDelivery.objects.filter(id__in=ids).update(
                claim_token=token,
                claimed_until=lease_end,
                next_attempt_at=lease_end,
                attempts=F("attempts") + 1,
                updated_at=now,
            )
    return token, ids


def _secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets_in_use = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets_in_use.append(endpoint.previous_secret)
    return secrets_in_use


def _apply_outcome(delivery: WebhookDelivery, result: transport.PostResult, started: datetime) -> str:
    """Set the delivery's fields from the answer; returns why its endpoint must be disabled, or ''."""
    endpoint, now = delivery.endpoint, timezone.now()
    delivery.claim_token = delivery.claimed_until = None
    delivery.last_attempt_at = started
    delivery.last_status_code = result.status_code
    delivery.last_duration_ms = result.duration_ms
    delivery.last_error = result.error[:2000]
    delivery.updated_at = now
    if result.ok:
        delivery.status, delivery.next_attempt_at, delivery.succeeded_at = WebhookDelivery.Status.SUCCEEDED, None, now
        return ""
    delay = retry_delay(delivery.attempts)
    if result.status_code in (429, 503) and delay is not None:
        asked = parse_retry_after(result.headers.get("retry-after"), now)
        delay = max(delay, asked) if asked is not None else delay
    reason = ""
    if result.status_code == 410:
        delay, reason = None, "The endpoint answered 410 Gone."
    elif endpoint.failing_since is not None and endpoint.failing_since <= now - DISABLE_AFTER:
        reason = f"Every delivery has failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC."
    if delay is None:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
    else:
        delivery.next_attempt_at = now + delay
    return f"{reason} Last error: {result.error}"[:2000] if reason else ""


_OUTCOME_SQL = (
    f"UPDATE {WebhookDelivery._meta.db_table} SET status = %s, next_attempt_at = %s, claim_token = NULL, "
    "claimed_until = NULL, last_attempt_at = %s, last_status_code = %s, last_duration_ms = %s, last_error = %s, "
    "succeeded_at = %s, updated_at = %s WHERE id = %s AND claim_token = %s AND status = 'pending'"
)


class _Outcomes:
    """Outcomes written in batches: one UPDATE and one INSERT per batch, not per delivery.

    Written when BATCH are waiting, a second after the first one, before an
    endpoint is disabled, and at the end of each chunk. A worker that dies
    with outcomes unwritten has its rows sent again after the lease, with the
    same webhook-id (at least once).
    """

    BATCH = 100
    MAX_WAIT = 1.0

    def __init__(self, token: uuid.UUID) -> None:
        self.token = token
        self.waiting: list[tuple[WebhookDelivery, transport.PostResult]] = []
        self.since = 0.0

    def add(self, delivery: WebhookDelivery, result: transport.PostResult, started: datetime) -> None:
        disable_reason = _apply_outcome(delivery, result, started)
        if not self.waiting:
            self.since = time.monotonic()
        self.waiting.append((delivery, result))
        if disable_reason:
            self.flush()
            webhook_endpoint_disable(endpoint=delivery.endpoint, reason=disable_reason)
        elif len(self.waiting) >= self.BATCH or time.monotonic() - self.since >= self.MAX_WAIT:
            self.flush()

    def flush(self) -> None:
        if not self.waiting:
            return
        deliveries = [delivery for delivery, _ in self.waiting]
        attempts = [
            WebhookDeliveryAttempt(
                delivery_id=delivery.id,
                attempted_at=delivery.last_attempt_at,
                status_code=result.status_code,
                duration_ms=result.duration_ms,
                error=delivery.last_error,
                succeeded=result.ok,
            )
            for delivery, result in self.waiting
        ]
        streaks = {}  # endpoint id -> (endpoint, ok?) of its latest outcome in the batch
        for delivery, result in self.waiting:
            streaks[delivery.endpoint_id] = (delivery.endpoint, result.ok, delivery.last_attempt_at)
        uuid_prep = WebhookDelivery._meta.pk.get_db_prep_value
        rows = [
            (
                d.status,
                d.next_attempt_at,
                d.last_attempt_at,
                d.last_status_code,
                d.last_duration_ms,
                d.last_error,
                d.succeeded_at,
                d.updated_at,
                uuid_prep(d.id, connection),
                uuid_prep(self.token, connection),
            )
            for d in deliveries
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            # One statement per row sent in one round trip (psycopg pipelines executemany); the ORM's
            # bulk_update builds CASE expressions whose compilation costs more than the deliveries.
            # Only rows still claimed by us: a row taken over after our lease keeps its new owner's state.
            cursor.executemany(_OUTCOME_SQL, rows)
            WebhookDeliveryAttempt.objects.bulk_create(attempts)
            for endpoint, ok, attempted_at in streaks.values():
                if ok and endpoint.failing_since is not None:
                    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
                    endpoint.failing_since = None
                elif not ok and endpoint.failing_since is None:
                    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
                        failing_since=attempted_at
                    )
                    endpoint.failing_since = attempted_at
        self.waiting = []


def _post(delivery: WebhookDelivery, started: datetime) -> transport.PostResult:
    event = delivery.event
    body = payload_body(event_id=str(event.id), event_type=event.type, created_at=event.created_at, data=event.data)
    headers = signature_headers(
        msg_id=str(event.id), body=body, timestamp=started, secrets_in_use=_secrets(delivery.endpoint, started)
    )
    return transport.post(delivery.endpoint.url, body.encode(), headers, timeout=_timeout())


def webhook_deliveries_deliver(*, token: uuid.UUID, ids: list) -> int:
    """Attempt every delivery of a claim and record the outcomes; returns how many were attempted.

    Stops early when the rest of the lease could not cover another attempt and
    gives the unattempted rows back (due at once), so no other worker can be
    sending the same row at the same time.
    """
    deliveries = WebhookDelivery.objects.filter(id__in=ids, claim_token=token).select_related("event", "endpoint")
    outcomes, endpoints, attempted = _Outcomes(token), {}, 0
    lease_safe_until = time.monotonic() + (claim_lease() - ATTEMPT_GRACE).total_seconds() - _timeout()
    given_back = []
    try:
        for delivery in deliveries.order_by("next_attempt_at", "created_at"):
            # One endpoint object per chunk, so a failure streak or a disable seen
            # by one delivery is seen by the next ones of the same endpoint.
            delivery.endpoint = endpoints.setdefault(delivery.endpoint_id, delivery.endpoint)
            if time.monotonic() > lease_safe_until:
                given_back.append(delivery.id)
                continue
            if not delivery.endpoint.enabled:
                continue  # disabled during this chunk: its pending rows were cancelled
            started = timezone.now()
            outcomes.add(delivery, _post(delivery, started), started)
            attempted += 1
    finally:
        outcomes.flush()
    if given_back:
        WebhookDelivery.objects.filter(id__in=given_back, claim_token=token).update(
            claim_token=None, claimed_until=None, next_attempt_at=timezone.now(), attempts=F("attempts") - 1
        )
    return attempted


def webhook_deliveries_run(*, budget_seconds: float | None = None, limit: int = CLAIM_CHUNK) -> int:
    """Claim and deliver chunks until nothing is due (or the time budget is spent). Returns attempts made."""
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    attempted = 0
    while deadline is None or time.monotonic() < deadline:
        token, ids = webhook_deliveries_claim(limit=limit)
        if not ids:
            break
        attempted += webhook_deliveries_deliver(token=token, ids=ids)
    return attempted
