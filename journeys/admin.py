"""Operators' admin for journeys: the campaign admin for campaigns of kind journey, and their enrollments.

`JourneyAdmin` is `CampaignAdmin` with `campaign_kind` journey: the same
forms (checked by `campaign_validate`) and inlines, saved through
`campaign_create(kind=journey)` / `campaign_update`, so an operator meets the
API's rules. The state changes only through `journey_turn_on` /
`journey_turn_off` (the changelist's actions); a refusal is shown as a
message. Journey enrollments are read-only: they move only through the state
machine.
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html

from campaigns.admin import CampaignAdmin
from campaigns.models import Campaign
from core.errors import ApplicationError

from .models import STATE_FOR_STATUS, Journey, JourneyEnrollment
from .services import journey_delete, journey_turn_off, journey_turn_on

JourneyStatus = JourneyEnrollment.JourneyStatus


def _enrollment_count(status: str) -> Coalesce:
    """How many of the journey's enrollments are in `status` (one correlated subquery: no query per row)."""
    counted = (
        JourneyEnrollment.objects.with_journey_status()
        .filter(campaign=OuterRef("pk"), journey_status=status)
        .order_by()
        .values("campaign")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


class JourneyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return Journey.State.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(status__in=[s for s, state in STATE_FOR_STATUS.items() if state == self.value()])
        return queryset


@admin.register(Journey)
class JourneyAdmin(CampaignAdmin):
    campaign_kind = Campaign.Kind.JOURNEY
    list_display = ("name", "account", "state", "active_count", "completed_count", "exited_count", "created_at")
    list_filter = (JourneyStateFilter, "account")
    list_select_related = ("account",)
    search_fields = ("name",)
    autocomplete_fields = ()
    actions = ("turn_on", "turn_off")
    readonly_fields = ("id", "state", "created_at", "updated_at", "activated_at", "enrollments")
    fieldsets = (
        (None, {"fields": ("id", "account", "name", "state")}),
        (
            "Options",
            {
                "fields": (
                    "min_wait_seconds",
                    "max_wait_seconds",
                    "verify_email_mx",
                    "bounce_rate_threshold",
                    "track_clicks",
                )
            },
        ),
        ("Enrollments", {"fields": ("enrollments",)}),
        ("Dates", {"fields": ("created_at", "updated_at", "activated_at")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_count=_enrollment_count(JourneyStatus.ACTIVE),
                completed_count=_enrollment_count(JourneyStatus.COMPLETED),
                exited_count=_enrollment_count(JourneyStatus.EXITED),
            )
        )

    @admin.display(description="State", ordering="status")
    def state(self, obj):
        return Journey.State(obj.state).label if obj and obj.pk else "—"

    @admin.display(description="Active", ordering="active_count")
    def active_count(self, obj):
        return obj.active_count

    @admin.display(description="Completed", ordering="completed_count")
    def completed_count(self, obj):
        return obj.completed_count

    @admin.display(description="Exited", ordering="exited_count")
    def exited_count(self, obj):
        return obj.exited_count

    @admin.display(description="Enrollments")
    def enrollments(self, obj):
        if not obj or not obj.pk:
            return "—"
        url = reverse("admin:journeys_journeyenrollment_changelist")
        counts = getattr(obj, "active_count", None)
        if counts is None:  # the add page's object, or one not read through get_queryset
            obj = self.get_queryset(None).get(pk=obj.pk)
        return format_html(
            'Active: {} · completed: {} · exited: {} — <a href="{}?journey={}">see the enrollments</a>',
            obj.active_count,
            obj.completed_count,
            obj.exited_count,
            url,
            obj.pk,
        )

    def _change_state(self, request, queryset, change, done: str) -> None:
        changed = 0
        for journey in queryset:
            try:
                change(journey=journey)
            except ApplicationError as exc:  # the API's 422, shown to the operator
                self.message_user(request, f"{journey.name}: {exc.message}", messages.ERROR)
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} journey(s) turned {done}.", messages.SUCCESS)

    @admin.action(description="Turn on")
    def turn_on(self, request, queryset):
        self._change_state(request, queryset, journey_turn_on, "on")

    @admin.action(description="Turn off")
    def turn_off(self, request, queryset):
        self._change_state(request, queryset, journey_turn_off, "off")

    def delete_model(self, request, obj):
        journey_delete(journey=obj)

    def delete_queryset(self, request, queryset):
        for journey in queryset:
            journey_delete(journey=journey)


class JourneyStatusFilter(admin.SimpleListFilter):
    title = "journey status"
    parameter_name = "journey_status"

    def lookups(self, request, model_admin):
        return JourneyStatus.choices

    def queryset(self, request, queryset):
        if self.value() in JourneyStatus.values:
            return queryset.filter(journey_status=self.value())
        return queryset


class JourneyFilter(admin.SimpleListFilter):
    title = "journey"
    parameter_name = "journey"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Journey.objects.order_by("name").values_list("pk", "name")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(campaign_id=uuid.UUID(self.value()))
        except ValueError:  # a hand-edited URL: no journey has that id
            return queryset.none()


@admin.register(JourneyEnrollment)
class JourneyEnrollmentAdmin(admin.ModelAdmin):
    list_display = (
        "contact_email",
        "journey",
        "journey_status",
        "round",
        "enrolled_at",
        "completed_at",
        "exit_reason",
    )
    list_filter = (JourneyStatusFilter, JourneyFilter)
    list_select_related = ("contact", "campaign")
    search_fields = ("contact__email",)
    fields = (
        "uuid",
        "journey",
        "contact",
        "journey_status",
        "round",
        "status",
        "smtp_credential",
        "enrolled_at",
        "sent_at",
        "completed_at",
        "exit_reason",
        "exited_at",
    )
    readonly_fields = fields
    show_full_result_count = False
    ordering = ("-id",)

    def get_queryset(self, request):
        return super().get_queryset(request).with_journey_status()

    @admin.display(description="Contact email", ordering="contact__email")
    def contact_email(self, obj):
        return obj.contact.email

    @admin.display(description="Journey", ordering="campaign__name")
    def journey(self, obj):
        return obj.campaign.name

    @admin.display(description="Journey status", ordering="journey_status")
    def journey_status(self, obj):
        return JourneyStatus(obj.journey_status).label

    @admin.display(description="Enrolled at", ordering="created_at")
    def enrolled_at(self, obj):
        return obj.enrolled_at

    @admin.display(description="Exit reason")
    def exit_reason(self, obj):
        return obj.exit_reason or "—"

    @admin.display(description="Exited at")
    def exited_at(self, obj):
        return obj.exited_at or "—"

    def has_add_permission(self, request):
        return False  # people enter by API (journey_enroll), which applies the rules

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
