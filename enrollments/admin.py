"""Enrollments and skips for operators: read-only, filterable by campaign, status and batch.

Statuses change only through the state machine (`enrollments.services`), so
nothing here edits them; an operator may move a pending enrollment to
another batch.
"""

from django.contrib import admin

from .models import Enrollment, EnrollmentSkip, EnrollmentTally

TIMESTAMPS = (
    "created_at",
    "sent_at",
    "opened_at",
    "replied_at",
    "bounced_at",
    "unsubscribed_at",
    "completed_at",
    "updated_at",
)


class BatchFilter(admin.SimpleListFilter):
    """The batches of the campaign filtered on, read from the tally (not a DISTINCT over millions of rows)."""

    title = "batch"
    parameter_name = "batch_number"

    def lookups(self, request, model_admin):
        campaign_id = request.GET.get("campaign__id__exact")
        if not campaign_id:
            return []
        batches = (
            EnrollmentTally.objects.filter(campaign_id=campaign_id)
            .order_by("batch_number")
            .values_list("batch_number", flat=True)
            .distinct()
        )
        return [(str(b), f"Batch {b}") for b in batches]

    def queryset(self, request, queryset):
        value = self.value()
        if value is not None and value.isdigit():
            return queryset.filter(batch_number=int(value))
        return queryset


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ("id", "contact", "campaign", "status", "batch_number", "sent_at", "replied_at", "bounced_at")
    list_filter = ("status", "campaign", BatchFilter)
    list_select_related = ("contact", "campaign")
    search_fields = ("contact__email", "uuid")
    raw_id_fields = ("contact", "campaign", "smtp_credential")
    readonly_fields = (
        "uuid",
        "campaign",
        "contact",
        "smtp_credential",
        "status",
        "bounce_reason",
        *TIMESTAMPS,
    )
    fields = ("uuid", "campaign", "contact", "smtp_credential", "status", "batch_number", "bounce_reason", *TIMESTAMPS)
    show_full_result_count = False  # no COUNT(*) over millions of rows per page
    ordering = ("-id",)

    def has_add_permission(self, request):
        return False  # enroll through the API, which applies the skip rules

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Enrollment.Status.PENDING:
            return (*self.readonly_fields, "batch_number")
        return self.readonly_fields


@admin.register(EnrollmentSkip)
class EnrollmentSkipAdmin(admin.ModelAdmin):
    list_display = ("email", "kind", "campaign", "reason", "created_at")
    list_filter = ("kind", "campaign")
    list_select_related = ("campaign",)
    search_fields = ("email",)
    readonly_fields = ("campaign", "contact", "email", "kind", "reason", "created_at")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
