"""Admin of the mailing app: the send outbox, read-only, with the operator's release action.

Rows are never edited by hand (the engine's invariants live in its
conditional UPDATEs); the one operator decision is releasing `unknown` sends
(a worker died while handing them over) to be sent again.
"""

from django.contrib import admin, messages

from .models import ScheduledSend
from .scheduling import sends_release_unknown


@admin.register(ScheduledSend)
class ScheduledSendAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "recipient", "step_position", "status", "send_at", "attempts", "sent_at")
    list_filter = ("status", "outcome_pending", "campaign")
    search_fields = ("message_id", "enrollment__contact__email")
    list_select_related = ("campaign", "step", "enrollment__contact")
    ordering = ("-send_at",)
    actions = ["release_unknown"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Recipient")
    def recipient(self, obj):
        return obj.enrollment.contact.email

    @admin.display(description="Step")
    def step_position(self, obj):
        return obj.step.position

    @admin.action(description="Release selected unknown sends (send them again)")
    def release_unknown(self, request, queryset):
        released = 0
        for campaign_id in (
            queryset.filter(status=ScheduledSend.Status.UNKNOWN).values_list("campaign_id", flat=True).distinct()
        ):
            ids = list(
                queryset.filter(campaign_id=campaign_id, status=ScheduledSend.Status.UNKNOWN).values_list(
                    "pk", flat=True
                )
            )
            campaign = ScheduledSend.objects.filter(pk=ids[0]).select_related("campaign").get().campaign
            released += sends_release_unknown(campaign=campaign, send_ids=ids)
        skipped = queryset.count() - released
        self.message_user(
            request, f"Released {released} send(s); {skipped} were not unknown and were left alone.", messages.SUCCESS
        )
