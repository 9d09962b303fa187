"""Operators' admin for mailboxes: settings with write-only secrets, health, users, forecast, OAuth2 connection.

Every write goes through `mailboxes.services` (and disabling through
`mailing.services.mailbox_disable`, which moves each campaign's sends and
tells integrators), so the admin and the API apply the same rules.
"""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.admin import adopt_created
from core.errors import ApplicationError
from inbound.selectors import mailbox_imap_status
from mailing.selectors import mailbox_forecast, mailbox_usage
from mailing.services import mailbox_disable

from . import selectors, services
from .models import Mailbox, looks_like_address

WRITE_ONLY_HELP = "Write-only: leave blank to keep the stored password. It is never shown."
EDITABLE = (
    "email",
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


class MailboxAdminForm(forms.ModelForm):
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
        model = Mailbox
        fields = ("account", "auth_kind", "oauth_provider", *EDITABLE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("smtp_host", "smtp_port", "smtp_username"):
            if name in self.fields:  # an OAuth2 mailbox takes them from its provider
                self.fields[name].required = False

    def clean(self):
        cleaned = super().clean()
        adding = self.instance._state.adding
        kind = cleaned.get("auth_kind") if adding else self.instance.auth_kind
        if kind == Mailbox.AuthKind.PASSWORD:
            for name in ("smtp_host", "smtp_port", "smtp_username"):
                if name in self.fields and not cleaned.get(name):
                    self.add_error(name, "This field is required.")
            if adding and not cleaned.get("new_smtp_password"):
                self.add_error("new_smtp_password", "A new password mailbox needs its SMTP password.")
        self._check_address(cleaned, adding)
        return cleaned

    def _check_address(self, cleaned, adding: bool) -> None:
        """The service's address rule, filed on the email field (the constraint alone would say it off-field)."""
        username = cleaned.get("smtp_username") or ""
        email = cleaned.get("email") or (username if looks_like_address(username) else "")
        account = cleaned.get("account") if adding else self.instance.account
        if (
            email
            and account
            and selectors.mailbox_address_taken(
                account_id=account.pk, email=email, exclude_pk=None if adding else self.instance.pk
            )
        ):
            self.add_error("email", f"The account already has a mailbox sending as {email}.")

    def validate_constraints(self):
        pass  # the one database rule a form can break, the address, is `_check_address`'s

    def _post_clean(self):
        # OAuth2 mailboxes get their hosts from the provider in the service: judge them there.
        if self.cleaned_data.get("auth_kind") == Mailbox.AuthKind.OAUTH2 and self.instance._state.adding:
            return
        super()._post_clean()

    def service_data(self, *, changed_only: bool) -> dict:
        names = self.changed_data if changed_only else list(self.cleaned_data)
        data = {name: self.cleaned_data[name] for name in names if name in EDITABLE}
        if self.cleaned_data.get("new_smtp_password"):
            data["smtp_password"] = self.cleaned_data["new_smtp_password"]
        if self.cleaned_data.get("new_imap_password"):
            data["imap_password"] = self.cleaned_data["new_imap_password"]
        elif self.cleaned_data.get("clear_imap_password"):
            data["imap_password"] = ""
        return data


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxAdminForm
    list_display = ("email", "account", "auth_kind", "daily_limit", "state", "created_at")
    list_filter = ("auth_kind", ("disabled_at", admin.EmptyFieldListFilter))
    search_fields = ("email", "smtp_username")
    list_select_related = ("account",)
    actions = ["reenable_selected", "disable_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "imap_sync_state")

    readonly_fields = (
        "id",
        "state",
        "usage",
        "reply_detection",
        "oauth_state",
        "used_by",
        "forecast",
        "disabled_at",
        "disabled_reason",
        "created_at",
        "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        identity = ("account", "auth_kind", "oauth_provider") if obj is None else ("id", "auth_kind", "oauth_state")
        fieldsets = [
            (None, {"fields": (*identity, "email", "from_name", "daily_limit")}),
            ("SMTP", {"fields": ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "new_smtp_password")}),
            (
                "IMAP (reply detection)",
                {"fields": ("imap_host", "imap_port", "imap_username", "new_imap_password", "clear_imap_password")},
            ),
        ]
        if obj is not None and obj.is_oauth2:
            fieldsets[1] = (
                "SMTP (OAuth2: XOAUTH2 with the granted token)",
                {"fields": ("smtp_host", "smtp_port", "smtp_security", "smtp_username")},
            )
            fieldsets[2] = ("IMAP (reply detection)", {"fields": ("imap_host", "imap_port", "imap_username")})
        if obj is not None:
            fieldsets += [
                ("Health", {"fields": ("state", "disabled_at", "disabled_reason", "usage", "reply_detection")}),
                ("Used by", {"fields": ("used_by",)}),
                ("Forecast (14 days)", {"fields": ("forecast",)}),
                ("Dates", {"fields": ("created_at", "updated_at")}),
            ]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # The account and the kind of sign-in are chosen once, at creation.
        fixed = ("account", "auth_kind", "oauth_provider") if obj else ()
        return (*self.readonly_fields, *fixed)

    # --- read-only views -------------------------------------------------------------------------------

    @admin.display(description="State")
    def state(self, obj):
        if obj.disabled_at:
            return f"Disabled: {obj.disabled_reason}"
        return obj.not_ready_reason or "Enabled"

    @admin.display(description="Usage")
    def usage(self, obj):
        u = mailbox_usage(mailbox=obj)
        return format_html(
            "{} first messages sent today of {} a day ({} left today) · bounce rate {}% ({} of {} messages)",
            u["sent_today"],
            obj.daily_limit,
            u["remaining_today"],
            u["bounce_rate"],
            u["bounces"],
            u["messages_sent"],
        )

    @admin.display(description="Reply detection")
    def reply_detection(self, obj):
        status = mailbox_imap_status(obj)  # its sync state read with it (`get_queryset`)
        text = status["imap_status"].replace("_", " ")
        if status["imap_last_error"]:
            return format_html("{}: {} (next try {})", text, status["imap_last_error"], status["imap_next_attempt_at"])
        return format_html("{} (last poll {})", text, status["imap_last_polled_at"] or "never")

    @admin.display(description="OAuth2")
    def oauth_state(self, obj):
        if not obj.is_oauth2:
            return "Password sign-in"
        connect = reverse("admin:mailboxes_mailbox_oauth_connect", args=[obj.pk])
        if obj.oauth_revoked_at:
            status = f"{obj.get_oauth_provider_display()}: access revoked on {obj.oauth_revoked_at:%Y-%m-%d %H:%M}"
        elif obj.oauth_connected_at:
            expiry = (
                f"token expires {obj.oauth_token_expires_at:%Y-%m-%d %H:%M} (refreshed before)"
                if obj.oauth_token_expires_at
                else "token refused by the server: refreshed at the next use"
            )
            status = f"{obj.get_oauth_provider_display()}: connected {obj.oauth_connected_at:%Y-%m-%d %H:%M}, {expiry}"
        else:
            status = f"{obj.get_oauth_provider_display()}: not connected yet"
        label = "Reconnect with OAuth2" if obj.oauth_connected_at else "Connect with OAuth2"
        return format_html('{} · <a class="button" href="{}">{}</a>', status, connect, label)

    @admin.display(description="Campaigns and journeys")
    def used_by(self, obj):
        users = list(selectors.mailbox_users(mailbox=obj))
        if not users:
            return "None: the mailbox can be deleted."
        rows = []
        for credential in users:
            campaign = credential.campaign
            app = "journeys_journey" if campaign.kind == "journey" else "campaigns_campaign"
            cap = f", at most {credential.campaign_daily_limit} a day" if credential.campaign_daily_limit else ""
            rows.append(
                (reverse(f"admin:{app}_change", args=[campaign.pk]), campaign.name, campaign.kind, campaign.status, cap)
            )
        return format_html("<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a> ({}, {}{})</li>', rows))

    @admin.display(description="Forecast")
    def forecast(self, obj):
        days = mailbox_forecast(mailbox=obj, days=14)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} / {}</td></tr>",
            ((d["date"], d["total"], d["first_messages"], d["daily_limit"]) for d in days),
        )
        return format_html(
            "<table><thead><tr><th>Day</th><th>Messages</th><th>First messages / limit</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    # --- writes ----------------------------------------------------------------------------------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if change:
            stored = Mailbox.objects.get(pk=obj.pk)
            services.mailbox_update(mailbox=stored, data=form.service_data(changed_only=True))
            adopt_created(obj, stored)
        else:
            data = form.service_data(changed_only=False)
            if form.cleaned_data["auth_kind"] == Mailbox.AuthKind.OAUTH2:
                data = {k: v for k, v in data.items() if v not in (None, "")}
            created = services.mailbox_create(
                account=form.cleaned_data["account"],
                auth_kind=form.cleaned_data["auth_kind"],
                oauth_provider=form.cleaned_data.get("oauth_provider") or "",
                **data,
            )
            adopt_created(obj, created)

    def delete_model(self, request, obj):
        services.mailbox_delete(mailbox=obj)

    def delete_queryset(self, request, queryset):
        for mailbox in queryset:
            services.mailbox_delete(mailbox=mailbox)

    @admin.action(description="Re-enable the selected mailboxes (for every campaign using them)")
    def reenable_selected(self, request, queryset):
        for mailbox in queryset:
            services.mailbox_reenable(mailbox=mailbox)
        self.message_user(request, f"{queryset.count()} mailbox(es) enabled.")

    @admin.action(description="Disable the selected mailboxes (their sends move to each campaign's others)")
    def disable_selected(self, request, queryset):
        disabled = sum(
            mailbox_disable(mailbox_id=mailbox.pk, reason=f"Disabled by an operator ({request.user}).")
            for mailbox in queryset
        )
        self.message_user(request, f"{disabled} mailbox(es) disabled.")

    def get_urls(self):
        connect = path(
            "<uuid:object_id>/oauth/connect/",
            self.admin_site.admin_view(self.oauth_connect_view),
            name="mailboxes_mailbox_oauth_connect",
        )
        return [connect, *super().get_urls()]

    def oauth_connect_view(self, request, object_id):
        """Send the operator to the provider to grant access; the callback brings them back here."""
        mailbox = get_object_or_404(Mailbox, pk=object_id)
        if not self.has_change_permission(request, mailbox):
            return HttpResponseRedirect(reverse("admin:index"))
        try:
            return HttpResponseRedirect(services.mailbox_oauth_start(mailbox=mailbox))
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:mailboxes_mailbox_change", args=[mailbox.pk]))
