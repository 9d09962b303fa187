"""Writes for webhook endpoints and the event outbox.

`webhook_event_record` is what other apps call, inside the transaction of the
state change that caused the event, so the event exists if and only if the
change committed. Delivery itself (claiming, posting, retrying) is in
`webhooks.delivery`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from core.errors import ApplicationError, ValidationFailed

from . import events as E
from .models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from .signing import jsonable, secret_generate
from .urlsafety import validate_endpoint_url

PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)


def _clean_events(events: list[str] | None) -> list[str]:
    events = list(dict.fromkeys(events or []))
    unknown = [name for name in events if name not in E.SUBSCRIBABLE_EVENT_TYPES]
    if unknown:
        message = f"Unknown event types: {', '.join(unknown)}. Known: {', '.join(E.SUBSCRIBABLE_EVENT_TYPES)}."
        raise ValidationFailed(message, code="webhook_event_type_unknown", details={"events": [message]})
    return events


def _record(*, account: Account, type: str, data: dict[str, Any], endpoints: list[WebhookEndpoint]) -> WebhookEvent:
    if type not in E.EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {type!r}; add it to webhooks.events.EVENT_TYPES.")
    event = WebhookEvent.objects.create(account=account, type=type, data=jsonable(data))
    if endpoints:
        now = timezone.now()
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now) for endpoint in endpoints
        )
    return event


def webhook_event_record(*, account: Account, type: str, data: dict[str, Any]) -> WebhookEvent:
    """Record an event and one pending delivery per enabled endpoint subscribed to `type`.

    Call it inside the transaction that made the change (it joins it; it opens
    one when there is none). At most three queries whatever the number of
    endpoints. `data` must be JSON-serializable; raises ValueError for a type
    not in `webhooks.events.EVENT_TYPES` (a programming error, not user input).
    """
    return webhook_events_record(account_id=account.pk, events=[(type, data)])[0]


def webhook_events_record(*, account_id: Any, events: list[tuple[str, dict[str, Any]]]) -> list[WebhookEvent]:
    """Record several events of one account at once: `webhook_event_record` for a batch.

    Three queries whatever the number of events and endpoints (the account's
    endpoints, the events, their deliveries), in the caller's transaction.
    Events are stored in the order given.
    """
    unknown = [type for type, _ in events if type not in E.EVENT_TYPES]
    if unknown:
        raise ValueError(f"Unknown webhook event type {unknown[0]!r}; add it to webhooks.events.EVENT_TYPES.")
    if not events:
        return []
    with transaction.atomic():
        endpoints = list(WebhookEndpoint.objects.filter(account_id=account_id, enabled=True).only("id", "events"))
        now = timezone.now()
        # A microsecond apart: the order given is the order events are stored and delivered in
        # (deliveries are claimed by `next_attempt_at`).
        recorded = [
            WebhookEvent(
                account_id=account_id, type=type, data=jsonable(data), created_at=now + timedelta(microseconds=n)
            )
            for n, (type, data) in enumerate(events)
        ]
        _insert_rows(WebhookEvent, ["id", "account_id", "type", "data", "created_at"], recorded)
        deliveries = [
            WebhookDelivery(
                event=event, endpoint=endpoint, next_attempt_at=event.created_at, created_at=now, updated_at=now
            )
            for event in recorded
            for endpoint in endpoints
            if endpoint.subscribes_to(event.type)
        ]
        _insert_rows(
            WebhookDelivery,
            [
                "id",
                "event_id",
                "endpoint_id",
                "status",
                "attempts",
                "next_attempt_at",
                "last_error",
                "created_at",
                "updated_at",
            ],
            deliveries,
        )
    return recorded


def _insert_rows(model, attnames: list[str], objects: list) -> None:
    """One multi-row INSERT of `objects` (fields `attnames`, by attribute name).

    `bulk_create` would do, but it stamps `auto_now_add` fields itself and
    would overwrite the `created_at` that orders a batch's events.
    """
    if not objects:
        return
    fields = [model._meta.get_field(name) for name in attnames]
    columns = ", ".join(field.column for field in fields)
    row = f"({', '.join(['%s'] * len(fields))})"
    params = [field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objects for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({columns}) VALUES {', '.join([row] * len(objects))}", params
        )


def webhook_endpoint_create(
    *, account: Account, url: str, description: str = "", events: list[str] | None = None
) -> WebhookEndpoint:
    """A new enabled endpoint with a fresh `whsec_` secret (readable on the returned object only)."""
    url = validate_endpoint_url(url)
    with transaction.atomic():
        return WebhookEndpoint.objects.create(
            account=account, url=url, description=description, events=_clean_events(events), secret=secret_generate()
        )


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, data: dict[str, Any]) -> WebhookEndpoint:
    """Partial update of url, description, events, enabled.

    Re-enabling clears the disabled reason and the failure streak; deliveries
    cancelled by the disable stay cancelled (redeliver them one by one).
    """
    changed: list[str] = []
    if "url" in data:
        endpoint.url = validate_endpoint_url(data["url"])
        endpoint.failing_since = None  # a new URL starts a new failure streak
        changed += ["url", "failing_since"]
    if "description" in data:
        endpoint.description = data["description"] or ""
        changed.append("description")
    if "events" in data:
        endpoint.events = _clean_events(data["events"])
        changed.append("events")
    with transaction.atomic():
        if "enabled" in data and data["enabled"] != endpoint.enabled:
            if data["enabled"]:
                endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
                endpoint.failing_since = None
                changed += ["enabled", "disabled_reason", "disabled_at", "failing_since"]
            else:
                webhook_endpoint_disable(endpoint=endpoint, reason="Disabled through the API.")
        if changed:
            endpoint.save(update_fields=[*changed, "updated_at"])
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries (the events stay, for the account's other endpoints)."""
    with transaction.atomic():
        endpoint.delete()


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> WebhookEndpoint:
    """A new secret; the current one keeps signing alongside it for 24 hours.

    Rotating again within those 24 hours drops the oldest secret at once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + PREVIOUS_SECRET_LIFETIME
        endpoint.secret = secret_generate()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return endpoint


def _refuse_if_disabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise ApplicationError(
            f"The endpoint is disabled ({endpoint.disabled_reason or 'no reason recorded'}); enable it first.",
            code="webhook_endpoint_disabled",
            status_code=409,
        )


def webhook_endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookEvent:
    """Record a `webhook.test` event delivered to this endpoint only. 409 if it is disabled."""
    _refuse_if_disabled(endpoint)
    data = {"endpoint_id": str(endpoint.id), "message": "A test event sent from the API."}
    with transaction.atomic():
        return _record(account=endpoint.account, type=E.WEBHOOK_TEST, data=data, endpoints=[endpoint])


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, now: datetime | None = None) -> bool:
    """Disable an enabled endpoint, cancel its pending deliveries and record
    `webhook_endpoint.disabled` (shown in the admin, delivered to the account's other endpoints).

    Returns False when it was already disabled (nothing changes, nothing is recorded).
    """
    now = now or timezone.now()
    with transaction.atomic():
        updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now
        )
        if not updated:
            return False
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
        WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.CANCELLED,
            next_attempt_at=None,
            claim_token=None,
            claimed_until=None,
            last_error=f"Cancelled: the endpoint was disabled ({reason}).",
            updated_at=now,
        )
        data = {
            "id": str(endpoint.id),
            "url": endpoint.url,
            "description": endpoint.description,
            "disabled_reason": reason,
            "disabled_at": now,
        }
        webhook_event_record(account=endpoint.account, type=E.WEBHOOK_ENDPOINT_DISABLED, data=data)
    return True


def webhook_delivery_redeliver(*, delivery: WebhookDelivery, now: datetime | None = None) -> WebhookDelivery:
    """Send a delivery again from the start of the retry schedule, whatever its status.

    409 `webhook_endpoint_disabled` when its endpoint is disabled,
    409 `webhook_delivery_in_progress` while an attempt is running.
    """
    now = now or timezone.now()
    _refuse_if_disabled(delivery.endpoint)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("event", "endpoint").get(pk=delivery.pk)
        if delivery.claimed_until and delivery.claimed_until > now:
            raise ApplicationError(
                "An attempt of this delivery is running; try again when it has finished.",
                code="webhook_delivery_in_progress",
                status_code=409,
            )
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.claim_token = None
        delivery.claimed_until = None
        delivery.save(
            update_fields=["status", "attempts", "next_attempt_at", "claim_token", "claimed_until", "updated_at"]
        )
    return delivery


def webhook_events_purge(*, queryset, batch: int = 1000) -> int:
    """Delete the given events (and their deliveries) in batches; returns how many events went."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.values_list("id", flat=True)[:batch])
            if not ids:
                return deleted
            WebhookEvent.objects.filter(id__in=ids).delete()
            deleted += len(ids)
