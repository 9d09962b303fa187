"""Operators' admin: campaigns with steps and credentials inline, stats on the change page.

Passwords are write-only here: the forms have no field bound to the stored
secret (so it is never rendered, not even masked), only "set a new one"
fields that change it when filled and leave it alone when blank.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join

from enrollments.selectors import campaign_stats

from .models import Campaign, Outreach, SequenceStep, SmtpCredential
from .services import campaign_delete

WRITE_ONLY_HELP = "Write-only: leave blank to keep the stored password. It is never shown."


class SmtpCredentialForm(forms.ModelForm):
    new_smtp_password = forms.CharField(
        label="SMTP password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=WRITE_ONLY_HELP,
    )
    new_imap_password = forms.CharField(
        label="IMAP password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=WRITE_ONLY_HELP,
    )
    clear_imap_password = forms.BooleanField(label="Remove the IMAP password", required=False)

    class Meta:
        model = SmtpCredential
        # Every field but the two secrets, which only the write-only fields below set.
        fields = (
            "label",
            "from_email",
            "from_name",
            "daily_limit",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "imap_host",
            "imap_port",
            "imap_username",
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_smtp_password"):
            self.instance.smtp_password = cleaned["new_smtp_password"]
        elif not self.instance.smtp_password:
            self.add_error("new_smtp_password", "Required for a new credential.")
        if cleaned.get("new_imap_password"):
            self.instance.imap_password = cleaned["new_imap_password"]
        elif cleaned.get("clear_imap_password"):
            self.instance.imap_password = ""
        return cleaned


class SequenceStepFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        positions = [
            form.cleaned_data.get("position")
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not positions:
            raise ValidationError("A campaign needs at least one sequence step.")
        if sorted(p for p in positions if p) != list(range(1, len(positions) + 1)):
            raise ValidationError("Step positions must be unique and contiguous from 1.")


class SmtpCredentialFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if not kept:
            raise ValidationError("A campaign needs at least one SMTP credential.")


class SequenceStepInline(admin.StackedInline):
    model = SequenceStep
    formset = SequenceStepFormSet
    extra = 0
    fields = ("position", "delay_minutes", "subject", "body_html", "body_text")


class SmtpCredentialInline(admin.StackedInline):
    model = SmtpCredential
    form = SmtpCredentialForm
    formset = SmtpCredentialFormSet
    extra = 0
    readonly_fields = ("imap_configured", "disabled_at", "disabled_reason")
    fieldsets = (
        (None, {"fields": ("label", "from_email", "from_name", "daily_limit")}),
        ("SMTP", {"fields": ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "new_smtp_password")}),
        (
            "IMAP (reply detection)",
            {"fields": ("imap_host", "imap_port", "imap_username", "new_imap_password", "clear_imap_password")},
        ),
        ("State", {"fields": ("imap_configured", "disabled_at", "disabled_reason")}),
    )

    @admin.display(boolean=True, description="IMAP configured")
    def imap_configured(self, obj):
        return obj.imap_configured if obj and obj.pk else False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "status", "outreach", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    list_select_related = ("account", "outreach")
    readonly_fields = ("id", "status", "created_at", "updated_at", "activated_at", "completed_at", "stats")
    autocomplete_fields = ("outreach",)
    inlines = [SequenceStepInline, SmtpCredentialInline]
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
