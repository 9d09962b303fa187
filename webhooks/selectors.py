"""Reads for webhooks, always scoped to one account."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone

from accounts.models import Account
from core.errors import ValidationFailed

from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint, WebhookEvent

RECENT_ATTEMPTS_SHOWN = 10


class WebhookDeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)
    event_type = django_filters.CharFilter(field_name="event__type", help_text="Only deliveries of this event type.")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "event_type"]


def webhook_endpoint_list(*, account: Account) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(account=account)


def webhook_delivery_list(
    *, account: Account, endpoint: WebhookEndpoint | None = None, filters: Mapping[str, Any] | None = None
) -> QuerySet[WebhookDelivery]:
    """Deliveries of the account (of one endpoint when given) with their event and latest attempts.

    `filters` (query parameters) go through `WebhookDeliveryFilter`; bad values are a 422.
    The attempt log comes in one prefetch query per page, whatever the page size.
    """
    queryset = WebhookDelivery.objects.filter(endpoint__account=account).select_related("event")
    if endpoint is not None:
        queryset = queryset.filter(endpoint=endpoint)
    if filters is not None:
        filterset = WebhookDeliveryFilter(filters, queryset=queryset)
        if not filterset.is_valid():
            details = {name: list(messages) for name, messages in filterset.errors.items()}
            raise ValidationFailed("A filter parameter is invalid.", details=details)
        queryset = filterset.qs
    recent = WebhookDeliveryAttempt.objects.order_by("-attempted_at", "-id")
    return queryset.prefetch_related(Prefetch("attempt_log", queryset=recent))


def webhook_events_purgeable(*, days: int) -> QuerySet[WebhookEvent]:
    """Events older than `days` with no delivery still pending (safe to delete)."""
    pending = WebhookDelivery.objects.filter(event=OuterRef("pk"), status=WebhookDelivery.Status.PENDING)
    return WebhookEvent.objects.filter(created_at__lt=timezone.now() - timedelta(days=days)).exclude(Exists(pending))
