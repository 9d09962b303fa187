"""Delivering the outbox: claim due deliveries, POST them signed, record the outcome.

The delivery half of the webhooks services (writes, one transaction each).

* `webhook_deliveries_claim` takes up to `limit` due rows with
  `SELECT … FOR UPDATE SKIP LOCKED`, gives them a claim token and pushes
  `next_attempt_at` to the end of a lease: concurrent claimers never take the
  same row, and rows of a worker that dies become due again by themselves.
* `webhook_deliveries_deliver` attempts each claimed row. Before posting it
  re-takes the row with a conditional UPDATE on its token (and counts the
  attempt): a row whose chunk lease ran out and was claimed by another
  worker is skipped, so a lease expiring early never sends twice. The
  attempt lease (timeout + grace) is what a killed worker leaves behind.
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
from django.db import transaction
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
ATTEMPT_GRACE = timedelta(seconds=30)  # lease beyond the HTTP timeout for signing and bookkeeping
CLAIM_CHUNK = 50


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


def claim_lease(limit: int) -> timedelta:
    """Long enough for a chunk of `limit` slow receivers; rows left over after it may be stolen."""
    return (timedelta(seconds=_timeout()) + ATTEMPT_GRACE) * min(limit, 4)


def webhook_deliveries_claim(*, limit: int = CLAIM_CHUNK, now: datetime | None = None) -> tuple[uuid.UUID, list]:
    """Claim up to `limit` due deliveries. Returns (claim token, ids); nobody else gets them."""
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            lease_end = now + claim_lease(limit)
            WebhookDelivery.objects.filter(id__in=ids).update(
                claim_token=token, claimed_until=lease_end, next_attempt_at=lease_end, updated_at=now
            )
    return token, ids


def _secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets_in_use = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets_in_use.append(endpoint.previous_secret)
    return secrets_in_use


def _start_attempt(delivery: WebhookDelivery, token: uuid.UUID, now: datetime) -> bool:
    lease_end = now + timedelta(seconds=_timeout()) + ATTEMPT_GRACE
    taken = WebhookDelivery.objects.filter(
        id=delivery.id, claim_token=token, status=WebhookDelivery.Status.PENDING
    ).update(
        attempts=F("attempts") + 1,
        claimed_until=lease_end,
        next_attempt_at=lease_end,
        last_attempt_at=now,
        updated_at=now,
    )
    delivery.attempts += 1
    return taken == 1


def _record_outcome(
    delivery: WebhookDelivery, token: uuid.UUID, result: transport.PostResult, started: datetime
) -> None:
    endpoint, now = delivery.endpoint, timezone.now()
    fields = {
        "claim_token": None,
        "claimed_until": None,
        "last_status_code": result.status_code,
        "last_duration_ms": result.duration_ms,
        "last_error": result.error[:2000],
        "updated_at": now,
    }
    disable_reason = ""
    if result.ok:
        fields.update(status=WebhookDelivery.Status.SUCCEEDED, next_attempt_at=None, succeeded_at=now)
    else:
        delay = retry_delay(delivery.attempts)
        if result.status_code in (429, 503) and delay is not None:
            asked = parse_retry_after(result.headers.get("retry-after"), now)
            delay = max(delay, asked) if asked is not None else delay
        if result.status_code == 410:
            delay, disable_reason = None, "The endpoint answered 410 Gone."
        if delay is None:
            fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=now + delay)
    with transaction.atomic():
        WebhookDelivery.objects.filter(id=delivery.id, claim_token=token, status=WebhookDelivery.Status.PENDING).update(
            **fields
        )
        WebhookDeliveryAttempt.objects.create(
            delivery_id=delivery.id,
            attempted_at=started,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            error=fields["last_error"],
            succeeded=result.ok,
        )
        if result.ok:
            if endpoint.failing_since is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
                endpoint.failing_since = None
        else:
            if endpoint.failing_since is None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=started)
                endpoint.failing_since = started
            elif endpoint.failing_since <= now - DISABLE_AFTER:
                disable_reason = f"Every delivery has failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC."
            if disable_reason:
                webhook_endpoint_disable(
                    endpoint=endpoint, reason=f"{disable_reason} Last error: {result.error}"[:2000]
                )


def webhook_delivery_attempt(*, delivery: WebhookDelivery, token: uuid.UUID) -> transport.PostResult | None:
    """One signed POST of a claimed delivery; None when the claim was lost (nothing sent)."""
    started = timezone.now()
    if not delivery.endpoint.enabled or not _start_attempt(delivery, token, started):
        return None
    event = delivery.event
    body = payload_body(event_id=str(event.id), event_type=event.type, created_at=event.created_at, data=event.data)
    headers = signature_headers(
        msg_id=str(event.id), body=body, timestamp=started, secrets_in_use=_secrets(delivery.endpoint, started)
    )
    result = transport.post(delivery.endpoint.url, body.encode(), headers, timeout=_timeout())
    _record_outcome(delivery, token, result, started)
    return result


def webhook_deliveries_deliver(*, token: uuid.UUID, ids: list) -> int:
    """Attempt every delivery of a claim; returns how many were attempted."""
    deliveries = WebhookDelivery.objects.filter(id__in=ids, claim_token=token).select_related("event", "endpoint")
    attempted, endpoints = 0, {}
    for delivery in deliveries.order_by("next_attempt_at", "created_at"):
        # One endpoint object per chunk, so a failure streak or a disable seen
        # by one delivery is seen by the next ones of the same endpoint.
        delivery.endpoint = endpoints.setdefault(delivery.endpoint_id, delivery.endpoint)
        if webhook_delivery_attempt(delivery=delivery, token=token) is not None:
            attempted += 1
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
