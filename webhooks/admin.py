"""Operators' view of webhooks: endpoints (never their secrets), events, deliveries.

Disabled endpoints show their reason; `webhook_endpoint.disabled` events are in
the events list. Deliveries filter by status and can be redelivered.
"""

from django.contrib import admin, messages

from core.errors import ApplicationError

from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint, WebhookEvent
from .services import webhook_delivery_redeliver


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "account", "enabled", "disabled_reason", "disabled_at", "failing_since", "created_at")
    list_filter = ("enabled",)
    search_fields = ("url", "description", "account__name")
    list_select_related = ("account",)
    # The secrets are not admin fields at all: editable=False keeps them out of every form.
    readonly_fields = (
        "id",
        "account",
        "enabled",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
    )
    fields = ("id", "account", "url", "description", "events", *readonly_fields[2:])

    def has_add_permission(self, request):
        return False  # created through the API, which validates the URL and answers the secret once


class WebhookDeliveryAttemptInline(admin.TabularInline):
    model = WebhookDeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "status_code", "duration_ms", "succeeded", "error")
    readonly_fields = fields
    ordering = ("-attempted_at",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "last_error_short",
        "created_at",
    )
    list_filter = ("status", "event__type")
    search_fields = ("=id", "=event__id", "endpoint__url", "endpoint__account__name")
    list_select_related = ("event", "endpoint")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields if f.name != "claim_token"]
    exclude = ("claim_token",)
    inlines = [WebhookDeliveryAttemptInline]
    actions = ["redeliver"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    @admin.display(description="event", ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.action(description="Redeliver selected deliveries")
    def redeliver(self, request, queryset):
        done, refused = 0, []
        for delivery in queryset.select_related("endpoint"):
            try:
                webhook_delivery_redeliver(delivery=delivery)
                done += 1
            except ApplicationError as exc:
                refused.append(f"{delivery.id}: {exc.message}")
        self.message_user(request, f"{done} delivery(ies) queued again.")
        for line in refused:
            self.message_user(request, line, level=messages.WARNING)


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "account", "created_at")
    list_filter = ("type",)
    search_fields = ("=id", "account__name")
    list_select_related = ("account",)
    readonly_fields = ("id", "account", "type", "data", "created_at")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
