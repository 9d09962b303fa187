"""Operators' admin: campaigns with steps and credentials inline, stats on the change page.

The forms (`campaigns.forms`) check the input with the services' own check
and the admin saves through `campaign_create` and `campaign_update`, so an
operator meets the API's rules and messages, and every write is the
service's (one transaction). Passwords are write-only.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils.html import format_html, format_html_join

from core.admin import adopt_created
from core.errors import ValidationFailed
from enrollments.selectors import campaign_stats

from .forms import CampaignAdminForm, SequenceStepFormSet, SmtpCredentialForm, SmtpCredentialFormSet
from .models import Campaign, Outreach, SequenceStep, SmtpCredential
from .services import (
    campaign_create,
    campaign_delete,
    campaign_update,
    outreach_create,
    outreach_delete,
    outreach_update,
)


class FirstOneOnAddMixin:
    def get_extra(self, request, obj=None, **kwargs):
        return 0 if obj else 1  # a new campaign needs one of each: show the first form


class SequenceStepInline(FirstOneOnAddMixin, admin.StackedInline):
    model = SequenceStep
    formset = SequenceStepFormSet
    fields = ("position", "delay_minutes", "subject", "body_html", "body_text")


class SmtpCredentialInline(FirstOneOnAddMixin, admin.TabularInline):
    model = SmtpCredential
    form = SmtpCredentialForm
    formset = SmtpCredentialFormSet
    fields = ("mailbox", "label", "campaign_daily_limit", "mailbox_state")
    readonly_fields = ("mailbox_state",)
    verbose_name = "mailbox"
    verbose_name_plural = "Mailboxes (SMTP credentials)"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None:
            formset.form = type(formset.form.__name__, (formset.form,), {"account_id": obj.account_id})
        return formset

    @admin.display(description="Mailbox state")
    def mailbox_state(self, obj):
        if not obj or not obj.pk:
            return "—"
        mailbox = obj.mailbox
        if mailbox.disabled_at:
            return f"Disabled: {mailbox.disabled_reason}"
        return mailbox.not_ready_reason or f"Enabled, {mailbox.daily_limit} a day"


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    # The kind of campaign this page shows and creates: a journey's admin (journeys.admin) is this one.
    campaign_kind = Campaign.Kind.CAMPAIGN
    form = CampaignAdminForm
    list_display = ("name", "account", "status", "outreach", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    list_select_related = ("account", "outreach")
    readonly_fields = ("id", "status", "created_at", "updated_at", "activated_at", "completed_at", "stats")
    autocomplete_fields = ("outreach",)
    inlines = [SequenceStepInline, SmtpCredentialInline]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind=self.campaign_kind)  # journeys have their own page

    fieldsets = (
        (None, {"fields": ("id", "account", "name", "outreach", "status")}),
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
        ("Stats", {"fields": ("stats",)}),
        ("Dates", {"fields": ("created_at", "updated_at", "activated_at", "completed_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # The account is chosen once, at creation.
        return (*self.readonly_fields, "account") if obj else self.readonly_fields

    @admin.display(description="Stats")
    def stats(self, obj):
        if not obj or not obj.pk:
            return "—"
        stats = campaign_stats(campaign=obj)
        totals = format_html_join(" · ", "{}: {}", stats["totals"].items())
        rates = format_html_join(" · ", "{}: {}%", stats["rates"].items())
        skipped = format_html_join(" · ", "{}: {}", stats["skipped"].items())
        credentials = format_html_join(
            "",
            "<li>{}: {} sent today of {}, bounce rate {}%{}</li>",
            (
                (
                    c["label"] or c["from_email"],
                    c["sent_today"],
                    c["daily_limit"],
                    c["bounce_rate"],
                    " — disabled" if c["disabled_at"] else "",
                )
                for c in stats["credentials"]
            ),
        )
        batches = format_html_join(
            "",
            "<li>Batch {}: {}</li>",
            (
                (b["batch_number"], ", ".join(f"{k} {v}" for k, v in b["totals"].items() if v))
                for b in stats["per_batch"]
            ),
        )
        return format_html(
            "<p><strong>Totals</strong> {}</p><p><strong>Rates</strong> {}</p>"
            "<p><strong>Skipped</strong> {}</p><p><strong>Credentials</strong></p><ul>{}</ul>"
            "<p><strong>Batches</strong></p><ul>{}</ul>",
            totals,
            rates,
            skipped,
            credentials,
            batches,
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationFailed as exc:
            # The forms passed the same check a moment before: the campaign changed meanwhile.
            # Nothing was written (the view's transaction rolled back).
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        pass  # save_related writes the campaign with its steps and credentials, in one service call

    def save_related(self, request, form, formsets, change):
        lists = {formset.service_key: formset for formset in formsets}
        if change:
            campaign_update(
                campaign=form.instance,
                data=form.service_data(changed_only=True),
                # A list nobody touched is left as stored.
                **{key: formset.service_items() for key, formset in lists.items() if formset.has_changed()},
            )
        else:
            created = campaign_create(
                account=form.cleaned_data["account"],
                kind=self.campaign_kind,
                **form.service_data(),
                **{key: formset.service_items() for key, formset in lists.items()},
            )
            adopt_created(form.instance, created)
        for formset in formsets:
            formset.record_changes()

    def delete_model(self, request, obj):
        campaign_delete(campaign=obj)

    def delete_queryset(self, request, queryset):
        for campaign in queryset:
            campaign_delete(campaign=campaign)


@admin.register(Outreach)
class OutreachAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "unique_contacts", "created_at")
    list_filter = ("unique_contacts",)
    search_fields = ("name",)
    list_select_related = ("account",)
    readonly_fields = ("id", "created_at", "updated_at")
    fields = ("id", "account", "name", "unique_contacts", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # The account is chosen once, at creation: its campaigns are that account's.
        return (*self.readonly_fields, "account") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data if name in ("name", "unique_contacts")}
            outreach_update(outreach=obj, data=data)
        else:
            adopt_created(obj, outreach_create(account=obj.account, name=obj.name, unique_contacts=obj.unique_contacts))

    def delete_model(self, request, obj):
        outreach_delete(outreach=obj)

    def delete_queryset(self, request, queryset):
        for outreach in queryset:
            outreach_delete(outreach=outreach)
