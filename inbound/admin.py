"""Admin for inbound events: read-only lists of replies, provider events, tracking hits, IMAP sync state.

Everything here is a record of what happened, so the admin shows it and
offers no edits; the one action resets an IMAP credential's backoff so an
operator who fixed a password need not wait.
"""

from django.contrib import admin

from .models import ImapSyncState, InboundMessage, ProviderEvent, TrackingEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "kind", "from_email", "subject", "matched_by", "applied", "dsn_status")
    list_filter = ("kind", "matched_by", "applied")
    search_fields = ("message_id", "from_email", "subject")
    list_select_related = ("enrollment",)
    raw_id_fields = ("enrollment", "scheduled_send", "smtp_credential", "mailbox")
    date_hierarchy = "received_at"


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "account", "provider_event", "event_type", "recipient", "outcome", "processed_at")
    list_filter = ("provider", "event_type", "outcome")
    search_fields = ("recipient", "message_id", "idempotency_key")
    list_select_related = ("account",)
    raw_id_fields = ("enrollment", "scheduled_send")


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "counted", "enrollment", "user_agent")
    list_filter = ("kind", "counted")
    raw_id_fields = ("enrollment", "scheduled_send")


@admin.register(ImapSyncState)
class ImapSyncStateAdmin(ReadOnlyAdmin):
    list_display = (
        "mailbox",
        "last_success_at",
        "consecutive_failures",
        "last_error",
        "next_attempt_at",
        "last_uid",
        "uidvalidity",
    )
    list_filter = ("consecutive_failures",)
    list_select_related = ("mailbox",)
    actions = ["retry_now"]

    @admin.action(description="Retry now (clear the backoff)")
    def retry_now(self, request, queryset):
        count = queryset.update(next_attempt_at=None)
        self.message_user(request, f"{count} mailbox(es) will be polled on the next tick.")
